"""The words the content-word signature (``c1``, ``pipeline.dedup.fingerprint``) leaves out: 2,176
tokens, the 200 most frequent words of each of en, de, fr, es, it, pt, nl, nb, sv, da, pl, tr, fi, cs,
as ``pipeline.text.tokenize`` splits them.

Every article holds most of its language's commonest words. In a set of words they make unrelated articles look
alike and put every article into the same few LSH buckets. Measured on the dev WARC (582 pages): the set of all
words gave 338 false candidate pairs beside 570 true ones; the content words (3 rows a band) give 68 false beside
589 true, and every true pair the two kinds found before is still found.

Data from wordfreq's ``top_n_list``, written by ``benchmarks/frequent_words.py``; regenerating it changes every
``c1`` signature (``FINGERPRINT_VERSION``).
"""

_LISTED = """
1 2 3 4 5 6 7 8 a aan aantal ab abbiamo aber about aby acho acuerdo ad adam además af after again against agli agora
ahora ai aika aikaa aikana aina ainakin ainda ainsi aivan ajan akkurat al alan albo aldri aldrig ale algo alguien
algunos alguns alguém alkaa all alla alle alleen allemaal alles allt alltid alors als also alt altid altijd altre
altri altro always além am ama an ancak anche ancora and anden andere anderen andet andra andre ani annat annet anni
anno année années ano anos another ans antaa antes any ao aos apenas après após aqui aquí arasında arbejde are
around artık as asi asia assim así at att até au auch auf aujourd aunque aus aussi autre autres aux av avait avant
avec aver avere aveva avoir aynı ayrıca az año años až back bak bana bara bardziej bardzo bare barn bazı başka be
beaucoup because bedre bedste been before behöver bei beim being bem ben bene beni benim bent bereits berlin best
beste beter better between bez bien big bij bile bin binnen bir biraz biri birlikte bis bitte biz bize bizi bizim
blant ble blev blevet bli blir blitt blive bliver bo boa bom bon bonne borde bort both bra brasil brug bruge bruke
bu bude budou budu bueno bugün bulunan bunu bunun burada burde but by bych byl byla byli bylo byly być był była było
były bästa bättre både böyle bør børn bütün büyük být będzie będą c cada can car cara cas casa caso ce cela ces cet
cette ceux chce chci che chez chi chodzi chose chyba ci cidade ciebie città ciudad ciò cię co coisa coisas com come
comme comment como compte con contra contre contro cosa cosas cose così could coś což creo cual cualquier cuando
cuenta cui czas czasu czy cómo d da daar dabei dafür dag daha dai dal dalej dalla dalle další damit dan danmark dann
dans dansk danske dar das dass dat day dazu de debe decir deel deg degli dei del della delle dello dem demek den
denk denn denna denne depois depuis der dere deres derfor des desde después dessa det detta dette detto deus
deutschen deutschland deux devam deve devlet deze değil di dia dias dice dich did didn die diese diesem diesen
dieser dieses dig dijo din dine dios dir dire disse dit ditt diye diz dizer diğer dla dlaczego dlatego dnes dnia do
dobrze době dobře doch dock doen does doet dog dois doit dom domu don donc donde dont door dopo dort dos dove down
doğru drei drie du duas due durante durch during dus dużo dva dwa dzieci dzień dzięki dziś där då déjà día días díky
dünya děti e each echt ed eden edes ediyor een eens eerste efter ehkä ei eigen eikä ein eine einem einen einer eines
einfach eivät el ela ele eles eli elkaar ella elle eller elles ellos em en encore end ende endnu enemmän enn ennen
ens entonces entre então enää er era erano erg eri erkek erst ersten es esa ese esimerkiksi eski eso essa esse
essere est esta estaba estado estar estas estava este esto estos estou estoy está están estão et etmek ett ettei
etter etti että etwas eu euch even every evet eğer fa faire fais fait fakat falar fan fare farklı fatto faut faz
fazer fazla feil fel ficar fick fik fikk fin find finde fine finne finnes finns fino first flere foi fois folk for
foram fordi forma forse fosse foto found fra fram france français from från fue fueron få fået får fått för första
før første für ga gaan gaat game gang ganska ganz gdy gdzie ge gece geen gegen geht geldi gelen geliyor gemaakt
genel general genom gens gente ger gerade gerek geri gerne gerçek get geven gewoon gi gibi gibt gick gik gikk giorni
giorno gir give giver già gjennom gjorde gjort gjør gjøre gli go gobierno god gode godt goed going good got gracias
gran grand grande grazie great grote grupo gut gå gång går gör göra göre gør gøre gün günü güzel ha haar hab habe
haben había hace hacer had hadde hade hai hakkında hala haluaa ham han hanno hans har has hast hasta hat hatte havde
have hay hayır he heb hebben hebt hecho heeft heel heidän hela hele help helsingin helt hem hemen hendes hep her
here herkes het heti heute hieman hier high hij him his histoire historia história hiç hiçbir ho hodně hoe hoje hold
home homme hon honom hos house how hoy hui huis hun hur hva hvad hvem hver hvis hvor hvordan hvorfor hyvin hyvä
hyvää há hän hänen hänet här hätte håller i ich ici idag iedereen iemand iets if igen igjen ihan ihm ihmiset ihn
ihnen ihr ihre ihren ihrer ik iki ikke il ile ilgili ilk ilman ils im immer in ind inden inga ingen inget inn innan
innych inom ins insan insanlar inte into invece io ir is ise isso ist istanbul istiyorum it italia its itse iyi için
içinde iş işte j ja jaar jag jahr jahre jahren jak jakie jako jamais jde je jeden jednak jeg jego jeho jej jejich
její jen jest jestem jesteś jestli jeszcze jetzt jeśli ještě ji jij jim již jo joka joku jonka jopa jos joskus jossa
jota jotain joten jotka jour jours jsem jsi jsme jsou jste ju jullie just juste juuri już já jälkeen jí ją k kabul
kadar kadın kaikki kaksi kan kann kanske kanskje kanssa karşı kautta każdy každý kde kdo kdy když ke keer kein keine
kendi kerran kertaa kez ki kiedy kiinni kiitos kilka kim kimse kinderen kişi know koko kolme kom komen komma komme
kommen kommer kommt komt koska koskaan kraju krijgen kterou která které který kteří kto ktoś która które której
który których którym którzy kuin kuinka kuitenkin kukaan kun kunde kunna kunne kunnen kunt kuten kvůli kyllä känner
können könnte kötü københavn küçük kız l la laat laatste lado land las lassen last lat laten lavoro le leben lenge
lepiej les let leur leurs leven li lidt lidé lidí life lige liian like lille lisäksi lisää lite litt little lo long
look loro los love lub ludzi ludzie luego lugar lui là lá länge lütfen m ma maakt maar machen macht made mag mai
maior mais mají mają make maken mal mam mamy man mand mange mann many mas masz may mayor me med mee meer meg meget
meglio mehr meidän meillä mein meine meio mejor melhor mellan mellem mellom men menee mener meno menos mens menschen
mensen mentre mer merci mere mes mesmo mest met meu mezi mi mia miał mich miejsce mientras mies mieux mieć mig mij
mijn miksi mikä mim min mina mindre mine minha minä mio mir mis mismo misschien missä mistä mit miten mitt mitä
mitään mm mnie moc mod modo moet moeten mogą mogę moi moins mois moja moje molto moment momento mon monde mondo more
mort most mot może można možná mr mu much muchas mucho muchos muito mukaan mukana mulher mulig mundo muss must musí
mutta muun muuta muuten muy my mycket mye myös má mám máme más mãe människor må många måske måste même místo mít mój
mówi müssen mě měl měla měli mı může n na naam naar nach nacional nad nada nadie nam naprawdę nas nasıl nawet ne
nebo ned neden nederland need nei nej nel nella nelle nem není ner net neue never new next než ni nic nich nicht
nichts nie niet nieuwe nigdy niiden niin niitä nikdo nikdy nikt nim niż no noch nodig noe noen nog nogen noget nogle
noi noin noite nok nome non nooit norge norsk norske nos nossa nosso nostro not notre nous nouveau nouvelle nova
novo nové now nu nuestra nuestro nueva nuevo nun nunca nuovo nur ny nya nye nyt nám nás não näin nämä när näyttää nå
någon något några når ní nós něco něj někdo o ob och också od oder of off og oggi ogni også ohne oikein ok olacak
olan olarak old oldu olduğu olduğunu ole olen olet olevan oli olika olisi olivat olla ollut olmak olsun oltre olur
om omdat omkring on ona onde onder one oni onko only ons ont onu onun onze ook op opp opravdu or ora oraz ortaya os
osa oslo oss osób other otra otras otro otros ottaa ou oui our out outro outros ovat over own où pak paljon par para
parce parece paris part parte partie pas paulo pays país pela pelo pendant people per perché pero personas persone
personne però pessoas petit peu peut pierwszy pitäisi pitää più plaats place plus plusieurs po poco pod podczas pode
podem poder podle poi pois pokud polsce polski por porque poslední potem pouco pour pourquoi pouze pra pracy praha
precis premier première prendre prima primeira primeiro primer primera primo pro proprio prostu prostě proti proto
protože proč první przed przez przy práce právě puede pueden pues puis può pár på před přes při qu qual qualche
qualcosa quale qualquer quand quando quanto que quel quella quello quelques quem quer quero questa queste questi
questo qui quien quiero quindi quoi qué r raz razem re really redan ret rett rien right riktigt rio roce rok roku
rundt rzeczy rätt również s sa saa saada saat sabe sadece sagen sahip sai said sais sam samalla same samen samma
samme sammen samt sana sans sarebbe sarà say schon school se sea secondo sedan see seg segundo según sehen sehr sei
sein seine seinen seiner seit seja sekä selbst selv sem sembra sempre sen sendo seni senin senza ser sera será ses
set sett seu seus she should show si sia siamo sich siden sido sidste sie siebie siellä siempre sier sig siger
siihen siinä siis siitä silloin sillä sim sin sina since sind sine siste sitt sitten sitä siz size sizi sizin się
själv ska skal skulle slik snel so sobie sobre soit soll sollte solo som some something son sondern sono sonra sont
sotto sou sous sowie soy sposób sta staan staat stadig stanie stata state stati stato steeds steht stejně stesso
still stor store storia strony stále står su sua suas such suis sul sulla suo suoi suomen suomessa suomi sur sus
svenska sverige svou své swoje synes são säga säger sätt så sådan sí só sólo söz są t ta taas tack tady tag tage
tager tai tak take taki takia takie takk taky také także takže tal tam también também tan tanto tar tarafından tatt
te tedy tegen tego tehdä tej tek tekee teki tem tempo temps temu ten tener tengo tenho tento ter teraz terug teď
teşekkürler też than that the their them then there these they thing things think this those three through ti tid
tiedä tiempo tiene tienen tijd tijdens til tilbage tilbake till tillbaka time ting tinha tipo to toch toda todas
todella todo todos toe toen tohle toho toi toinen tom tomu ton too tot toujours tous tout toute toutes tra trabajo
trabalho travail tre trenger tres trochę trois trop tror trzeba très três tu tudo tulee tuli tuo tussen tutaj tutte
tutti tutto två twee two ty tych tycker tylko tym tão tähän tällä tämä tämän tänään tässä tästä tätä täällä této tím
tüm türk türkiye třeba tři u ud uden uhr uit um uma un una und under une uno uns unter up upp us use used usein ut
utan uten uur uusi uw uzun už v va vaan vad vai vaikka vain van vanaf var vara vardır varför varit varje varmaan
varmasti vastaan ve veces ved vedere veel vel veldig velmi vem ver verdad verkligen vers very vet veut veya vez
vezes vi via vid vida vie viel viele vielleicht vielä viene viime vil vilket vill ville vind vinden visto vita você
voi voidaan voir voisi volta vom von voor vor vores votre vou vous voy vraiment vrouw vu vuoden vuonna vuotta vám
vás vähän väl väldigt välillä vår være været vært víc více však vše všechno všechny všichni vůbec w waar waarom want
war waren warum was wat way we weer weet weg weil weiss weiter wel well wenn wer werd werden were werk weten what
when where which while who why wie wieder wiele wiem wij wil will willen wir wird wirklich with without więc więcej
wo wohl wollen worden wordt work world would wszyscy wszystkich wszystkie wszystko wurde wurden während wäre würde
właśnie y ya yani yapan yapılan year years yeni yer yerine yhdessä yhtä yine yksi yli yo yok you your yüksek yıl
yılında z za zal zaman zase zaten zawsze zde ze zeggen zegt zeit zeker zelf zich zie zien zij zijn zit zo zoals
zonder został zou zu zullen zum zur zwei zwischen à às än ändå är även å år åt ça çocuk çok çünkü è é él était état
été één être önce önemli över öyle özel ønsker über üzere üzerinde üzerine üç čas české či řekl şekilde şey şimdi şu
że żeby życia życie že život
"""
WORDS = frozenset(_LISTED.split())
