"""The words of the demo: fictional sites and stories written for this project.

Every site, person, company and event here is invented (the places are real so
that entity extraction has something to find).  ``_generate.py`` turns this into
the HTML pages and feeds under ``data/``; edit here, then regenerate with
``python -m pipeline.demo._generate``.

A body is a list of blocks: a string is a paragraph; tuples are special blocks:
``("h2", text)``, ``("figure", image, caption, credit)`` (a <figure>, which
extractors drop), ``("photo", image, caption, credit)`` (caption and credit as
plain paragraphs after the image, as syndicated copies carry them: extractors
keep those), ``("pasted", headline)`` (a related story's headline pasted between
paragraphs, as syndication scrapers leave it), ``("teaser", label, headline,
href)`` ("Read more: ..."), ``("line", text)`` (a prompt in a paragraph of its
own), ``("ad",)`` (an ad slot and its label), ``("quote", text)``, ``("raw", html)``.
"""

from __future__ import annotations

# --- sites ------------------------------------------------------------------------

SITES = {
    "harborledger": {
        "name": "The Harbor Ledger", "domain": "harborledger.example", "lang": "en", "feed": "rss",
        "city": "Halifax", "tagline": "Halifax news since 1871",
        "nav": ["Local", "Nova Scotia", "Canada", "World", "Business", "Sports", "Opinion", "Weather"],
        "tags": ["local", "canada"],
    },
    "northgate": {
        "name": "Northgate Daily", "domain": "northgatedaily.example", "lang": "en", "feed": "atom",
        "city": "Manchester", "tagline": "The voice of the North West",
        "nav": ["News", "Manchester", "UK", "World", "Money", "Sport", "Culture", "Puzzles"],
        "tags": ["uk"],
    },
    "valleycourier": {
        "name": "Valley Courier", "domain": "valleycourier.example", "lang": "en", "feed": "json",
        "city": "Fresno", "tagline": "Central Valley news, every day",
        "nav": ["News", "Agriculture", "Education", "Nation & World", "Business", "Sports", "Obituaries"],
        "tags": ["us", "agriculture"],
    },
    "marketpulse": {
        "name": "Market Pulse", "domain": "marketpulse.example", "lang": "en", "feed": "aggregator",
        "city": None, "tagline": "Markets, money and the news that moves them",
        "nav": ["Home", "Markets", "Economy", "World News", "Crypto", "Commodities", "Contact"],
        "tags": ["aggregator", "business"],
    },
    "rheinblick": {
        "name": "Rheinblick", "domain": "rheinblick.example", "lang": "de", "feed": "rss",
        "city": "Köln", "tagline": "Nachrichten aus Köln und dem Rheinland",
        "nav": ["Köln", "Region", "Politik", "Wirtschaft", "Kultur", "Sport", "Service"],
        "tags": ["de"],
    },
    "courrier": {
        "name": "Courrier Atlantique", "domain": "courrier-atlantique.example", "lang": "fr", "feed": "atom",
        "city": "Bayonne", "tagline": "Le journal des deux rives de la Bidassoa",
        "nav": ["Pays basque", "Landes", "Euskadi", "Culture", "Sports", "En español"],
        "tags": ["fr", "es"],
    },
}

# Text of the page furniture, per language.
FURNITURE = {
    "en": {
        "cookie": "We use cookies and similar technologies to personalise content, measure traffic and show "
                  "relevant ads. By clicking \u201cAccept all\u201d you agree to this. You can change your choice "
                  "at any time under Privacy settings.",
        "accept": "Accept all", "manage": "Manage preferences",
        "share": "Share this article", "related": "Related stories", "most_read": "Most read",
        "newsletter": "Sign up for our morning newsletter and get the day\u2019s top stories in your inbox.",
        "subscribe": "Subscribe", "search": "Search", "by": "By", "tags": "Topics",
        "footer": ["About us", "Contact", "Advertise", "Careers", "Privacy policy", "Terms of use",
                   "Cookie settings", "Corrections"],
        "rights": "All rights reserved.", "home": "Home", "updated": "Updated",
        "copy": "Copy link",
    },
    "de": {
        "cookie": "Wir verwenden Cookies und ähnliche Technologien, um Inhalte zu personalisieren und "
                  "Zugriffe zu analysieren. Mit \u201eAlle akzeptieren\u201c stimmen Sie dem zu. Ihre Auswahl "
                  "können Sie jederzeit in den Datenschutzeinstellungen ändern.",
        "accept": "Alle akzeptieren", "manage": "Einstellungen",
        "share": "Artikel teilen", "related": "Mehr zum Thema", "most_read": "Meistgelesen",
        "newsletter": "Jetzt den Newsletter abonnieren: die wichtigsten Nachrichten aus Köln jeden Morgen.",
        "subscribe": "Abonnieren", "search": "Suche", "by": "Von", "tags": "Themen",
        "footer": ["Impressum", "Kontakt", "Mediadaten", "Datenschutz", "AGB", "Cookie-Einstellungen"],
        "rights": "Alle Rechte vorbehalten.", "home": "Startseite", "updated": "Aktualisiert",
        "copy": "Link kopieren",
    },
    "fr": {
        "cookie": "Nous utilisons des cookies pour personnaliser les contenus et mesurer l\u2019audience. En "
                  "cliquant sur \u00ab Tout accepter \u00bb, vous consentez à leur utilisation. Vous pouvez "
                  "modifier vos choix à tout moment.",
        "accept": "Tout accepter", "manage": "Paramétrer",
        "share": "Partager cet article", "related": "Sur le même sujet", "most_read": "Les plus lus",
        "newsletter": "Inscrivez-vous à notre newsletter pour recevoir l\u2019essentiel de l\u2019actualité.",
        "subscribe": "S\u2019abonner", "search": "Rechercher", "by": "Par", "tags": "Thèmes",
        "footer": ["Qui sommes-nous", "Contact", "Publicité", "Mentions légales", "Confidentialité",
                   "Gestion des cookies"],
        "rights": "Tous droits réservés.", "home": "Accueil", "updated": "Mis à jour",
        "copy": "Copier le lien",
    },
    "es": {
        "cookie": "Utilizamos cookies propias y de terceros para personalizar el contenido y analizar el "
                  "tráfico. Al pulsar \u00abAceptar todo\u00bb consientes su uso. Puedes cambiar tu elección "
                  "en cualquier momento.",
        "accept": "Aceptar todo", "manage": "Configurar",
        "share": "Comparte esta noticia", "related": "Te puede interesar", "most_read": "Lo más leído",
        "newsletter": "Suscríbete a nuestro boletín y recibe las noticias del día en tu correo.",
        "subscribe": "Suscribirse", "search": "Buscar", "by": "Por", "tags": "Temas",
        "footer": ["Quiénes somos", "Contacto", "Publicidad", "Aviso legal", "Privacidad", "Cookies"],
        "rights": "Todos los derechos reservados.", "home": "Portada", "updated": "Actualizado",
        "copy": "Copiar enlace",
    },
}

# --- the wire story ------------------------------------------------------------------
# Written by Continental Press Service (a fictional agency) and republished by four
# sites, each in its own wrapping.

WIRE_TITLE = "Crew of disabled cargo ship rescued in North Sea storm"
WIRE_DEK = ("Helicopters winched all 22 sailors from the Nordhavn Carrier after it lost power "
            "west of Bergen in waves of up to 12 metres.")
WIRE_AUTHOR = "Kari Lindqvist"

WIRE = [
    "BERGEN, Norway (CPS) \u2014 Rescue helicopters lifted all 22 crew members from a disabled cargo ship "
    "in the North Sea on Tuesday after the vessel lost engine power in a fierce autumn storm and began "
    "drifting toward the Norwegian coast, authorities said.",
    "The Nordhavn Carrier, a 190-metre bulk carrier sailing from Rotterdam to Troms\u00f8 with a cargo of "
    "fertiliser and building materials, sent a distress call shortly before dawn about 40 nautical miles "
    "west of Bergen, according to the Joint Rescue Coordination Centre of Southern Norway.",
    "Waves of up to 12 metres and winds gusting above 90 kilometres per hour made it impossible for "
    "lifeboats or nearby vessels to reach the ship, officials said. Two helicopters from the rescue base "
    "at Sola, near Stavanger, winched the crew to safety in five trips over roughly four hours.",
    "\u201cConditions were among the worst our crews have flown in this year,\u201d said Ingrid Haugland, a "
    "spokesperson for the coordination centre. \u201cEvery one of the 22 crew members is safe, and only two "
    "needed treatment for minor injuries.\u201d",
    "The crew, sailors from the Philippines, Ukraine, Poland and India, were taken to Haukeland University "
    "Hospital in Bergen for checks. Captain Tomasz Wierzbicki was the last to leave the ship, rescuers said.",
    "By early afternoon the empty ship was drifting northeast at about three knots. An ocean-going tug, "
    "the Skagerrak Titan, reached the vessel at around 2 p.m. and was trying to attach a towline, the "
    "Norwegian Coastal Administration said.",
    "The agency said the ship carried around 900 tonnes of heavy fuel oil and that an oil-spill response "
    "vessel had been sent from Bergen as a precaution. No leak had been detected by Tuesday evening.",
    "Nordhavn Shipping, the Copenhagen-based company that operates the vessel, said in a statement that an "
    "electrical failure in the engine room had caused the blackout and that it was cooperating fully with "
    "Norwegian authorities. \u201cOur first thoughts are with the crew and their families,\u201d chief "
    "executive Annelise Brandt said.",
    "The storm, named Ylva by Norwegian forecasters, swept across western Norway overnight, cutting power "
    "to more than 60,000 homes and forcing the closure of several mountain roads and ferry routes. The "
    "Norwegian Meteorological Institute kept a red warning in place for the coast between Stavanger and "
    "\u00c5lesund until Wednesday morning.",
    "Maritime safety experts said the incident showed the risks facing ageing bulk carriers in winter "
    "storms. The Nordhavn Carrier was built in 2004 and passed its most recent inspection in March, "
    "according to records from its classification society.",
    "\u201cA loss of propulsion in those seas is every captain\u2019s nightmare,\u201d said Marcus Ellery, a "
    "former merchant navy officer who now teaches ship safety in Malm\u00f6, Sweden. \u201cThe crew did "
    "what they had to do, and the rescue services did the rest.\u201d",
    "It was the second major rescue in Norwegian waters this autumn. In October, a fishing trawler with 14 "
    "people on board was towed to safety after losing its steering off the Lofoten Islands.",
    "The Norwegian Safety Investigation Authority said it would open an inquiry once the ship had been "
    "secured in port.",
]

CAPTION_EN = ("A rescue helicopter from the Sola base approaches the Nordhavn Carrier west of Bergen, "
              "Norway, on Tuesday, Nov. 12, 2024.")
CREDIT_EN = "Photo: Joint Rescue Coordination Centre / Handout"
# The caption the photo agency sent in French; one site pasted it untranslated.
CAPTION_FR = ("Un marin du Nordhavn Carrier est hélitreuillé au large de Bergen, en Norvège, "
              "le mardi 12 novembre 2024.")
CREDIT_FR = "Agence Nordique de Presse via Getty Images"

DISCLAIMER = ("(This article is generated through the syndicated feed sources, Market Pulse neither "
              "support nor own any part of this article)")

# --- the articles -------------------------------------------------------------------
# path: under the site; published: ISO 8601 UTC.

ARTICLES = [
    # ---- the wire story, four copies ----
    {
        "site": "harborledger", "path": "world/2024/11/12/crew-airlifted-stricken-cargo-ship-storm-ylva.html",
        "title": "22 crew airlifted from stricken cargo ship as storm Ylva batters Norway",
        "dek": WIRE_DEK, "author": WIRE_AUTHOR, "agency": "Continental Press Service",
        "published": "2024-11-12T17:40:00Z", "section": "World", "tags": ["Norway", "Shipping", "Storms"],
        "image": "ship-rescue.svg", "wire": True,
        "body": WIRE[:3] + [("photo", "ship-rescue.svg", CAPTION_EN, CREDIT_EN)] + WIRE[3:8]
        + [("photo", "winch.svg", CAPTION_FR, CREDIT_FR)] + WIRE[8:]
        + [("teaser", "Read more:", "Opinion: our harbours need a safety rethink",
            "opinion/2024/11/05/harbours-safety-rethink.html")],
    },
    {
        "site": "northgate", "path": "news/world/helicopters-rescue-sailors-drifting-freighter-bergen",
        "title": "Helicopters rescue sailors from drifting freighter off Bergen",
        "dek": "All 22 crew safe after bulk carrier loses engine power in North Sea storm.",
        "author": WIRE_AUTHOR, "agency": "Continental Press Service",
        "published": "2024-11-12T18:05:00Z", "section": "World", "tags": ["World", "Norway"],
        "image": "ship-rescue.svg", "wire": True,
        # Cut to fit the page: the first eight of thirteen paragraphs (about 60%).
        "body": WIRE[:4] + [("ad",)] + WIRE[4:8]
        + [("line", "Sign up to our free newsletter for the top stories from Greater Manchester and beyond.")],
    },
    {
        "site": "valleycourier", "path": "nation-world/2024/11/12/north-sea-storm-all-22-crew-saved",
        "title": "North Sea storm: all 22 crew saved from powerless bulk carrier",
        "dek": WIRE_DEK, "author": WIRE_AUTHOR, "agency": "Continental Press Service",
        "published": "2024-11-12T19:15:00Z", "section": "Nation & World", "tags": ["World", "Weather"],
        "image": "ship-rescue.svg", "wire": True,
        "body": WIRE[:5] + [("pasted", "Why winter storms are getting harder to forecast")]
        + WIRE[5:9] + [("ad",)] + WIRE[9:]
        + [("figure", "winch.svg", CAPTION_FR, CREDIT_FR)],
    },
    {
        "site": "marketpulse", "path": "2024/11/12/crew-of-disabled-cargo-ship-rescued-in-north-sea-storm/",
        "title": WIRE_TITLE, "dek": WIRE_DEK, "author": "Market Pulse Newsdesk", "agency": None,
        "published": "2024-11-12T20:02:00Z", "section": "World News", "tags": ["World News", "Shipping"],
        "image": "ship-rescue.svg", "wire": True, "aggregated_from": "valleycourier",
        "body": WIRE[:3] + [("photo", "ship-rescue.svg", CAPTION_EN, CREDIT_EN)] + WIRE[3:],
    },
    # ---- The Harbor Ledger (Halifax) ----
    {
        "site": "harborledger", "path": "local/2024/11/11/council-approves-year-round-ferry-dartmouth.html",
        "title": "Council approves year-round late-night ferry to Dartmouth",
        "dek": "Evening crossings will run until 1 a.m. from April under a two-year pilot.",
        "author": "Renée Comeau", "published": "2024-11-11T22:10:00Z", "section": "Local",
        "tags": ["Halifax", "Transit"], "image": "ferry.svg",
        "body": [
            "Halifax Regional Council voted 12 to 4 on Monday to extend ferry service between downtown Halifax "
            "and Dartmouth until 1 a.m. every night of the week, starting in April.",
            "The two-year pilot will cost about $1.8 million a year, most of it for crew overtime and fuel. "
            "Halifax Transit expects the later sailings to carry around 900 extra riders on a typical weekend "
            "night, according to a staff report presented to council.",
            "Councillor Priya Nandakumar, who proposed the extension last spring, said workers in restaurants, "
            "hospitals and bars had been left with expensive taxi rides or long bus detours when the last boat "
            "left at 11:30 p.m. \u201cThe harbour is the fastest road we have,\u201d she told council. \u201cIt "
            "should not close before people finish work.\u201d",
            "Opponents questioned the cost at a time when the municipality is trimming other budgets. "
            "Councillor Doug MacPhee said he supported later service in principle but wanted a cheaper trial "
            "limited to Fridays and Saturdays. His amendment failed.",
            "The Woodside ferry route, which serves the Dartmouth General Hospital area, is not part of the "
            "pilot. Staff will report back on ridership after the first summer season.",
            "Halifax Transit also confirmed that the second of two new electric ferries ordered from a shipyard "
            "in Nova Scotia is due in service by next autumn, which would add capacity on the busiest runs.",
            ("teaser", "Read more:", "City unveils plan for 2,000 new homes", "local/2024/11/04/plan-2000-homes.html"),
            ("line", "Follow us on Facebook for the latest Halifax news."),
        ],
    },
    {
        "site": "harborledger", "path": "local/2024/11/10/library-makerspace-opens-3d-printers-sewing.html",
        "title": "Central library opens free makerspace with 3D printers and sewing machines",
        "dek": "Anyone with a library card can book time on the equipment, staff say.",
        "author": "Tom Beaulieu", "published": "2024-11-10T14:30:00Z", "section": "Local",
        "tags": ["Halifax", "Libraries"], "image": "library.svg",
        "body": [
            "The Halifax Central Library opened a free makerspace on its fourth floor on Saturday, with four "
            "3D printers, a laser cutter, two sewing machines and a small recording booth.",
            "Anyone with a library card can book up to two hours of equipment time a week, and staff run "
            "introductory sessions every Tuesday and Thursday evening. Materials such as printer filament are "
            "provided at cost.",
            "\u201cWe kept hearing from people who had an idea but no garage, no tools and no one to ask,\u201d "
            "said Maya Okonkwo, who manages the space. \u201cA library has always been the place where you can "
            "borrow what you cannot afford to own. This is the same idea with different objects.\u201d",
            "On opening day, a queue formed before 10 a.m. Among the first projects were a replacement knob for "
            "a 1970s radio, a set of name tags for a hockey team and a cushion cover made from an old flag.",
            "The space was paid for with a grant of $240,000 from a provincial innovation fund and a donation "
            "from a local engineering firm. Halifax Public Libraries said it hopes to open smaller versions in "
            "Dartmouth and Sackville within two years.",
        ],
    },
    # ---- Northgate Daily (Manchester) ----
    {
        "site": "northgate", "path": "news/manchester/metrolink-stockport-extension-approved",
        "title": "Metrolink extension to Stockport gets the go-ahead",
        "dek": "Trams could reach Stockport Interchange by 2029 after funding is confirmed.",
        "author": "Hannah Whitworth", "published": "2024-11-11T09:00:00Z", "section": "Manchester",
        "tags": ["Manchester", "Transport", "Stockport"], "image": "tram.svg",
        "body": [
            "Trams will run to Stockport for the first time under plans approved on Monday by the Greater "
            "Manchester Combined Authority, which confirmed \u00a3210 million of funding for a three-mile "
            "extension of the Metrolink network from East Didsbury.",
            "The new line would follow a disused railway alignment for much of its length and end at a rebuilt "
            "Stockport Interchange, where passengers can change to trains and buses. Construction is due to "
            "start in 2026, with the first services expected in 2029.",
            "Mayor Andy Burnham said the extension would bring \u201ca turn-up-and-go tram every six minutes\u201d "
            "to a town that has long been left off the network. Stockport Council leader Mark Hunter called it "
            "the most important transport decision for the borough in a generation.",
            ("line", "Sign up to our free newsletter for the top stories from Greater Manchester and beyond."),
            ("h2", "Concerns over disruption"),
            "Residents along the route have raised concerns about noise and the loss of trees on the old "
            "railway embankment. Transport for Greater Manchester said it would replant twice as many trees "
            "as it removes and run a public consultation on the design of the three new stops in the spring.",
            "Business groups welcomed the decision but warned that years of roadworks in the town centre could "
            "hurt trade. The combined authority said it would publish a construction plan next year.",
        ],
    },
    {
        "site": "northgate", "path": "news/manchester/university-study-maps-hottest-streets",
        "title": "Study maps Manchester's hottest streets \u2014 and finds a 7C gap",
        "dek": "Researchers fitted sensors to bicycles to measure summer temperatures street by street.",
        "author": "Oliver Quayle", "published": "2024-11-10T07:30:00Z", "section": "Manchester",
        "tags": ["Manchester", "Climate", "Science"], "image": "heat.svg",
        "body": [
            "Some streets in central Manchester were up to 7C hotter than leafy suburbs on the same summer "
            "afternoon, according to a study by researchers at the University of Manchester.",
            "The team fitted temperature sensors to 40 bicycles ridden by volunteers across the city during "
            "July and August, collecting more than two million readings. The hottest spots were wide roads "
            "lined with dark buildings and few trees, such as parts of Ancoats and the Mancunian Way.",
            "\u201cPeople know that cities are warmer than the countryside, but the differences inside a city "
            "are much bigger than most of us assume,\u201d said Dr Leila Farahani, who led the project. "
            "\u201cTwo streets a few hundred metres apart can feel like different climates.\u201d",
            "The researchers found that streets with mature trees stayed on average 3C cooler than similar "
            "streets without them. They have shared their maps with Manchester City Council, which is "
            "preparing a plan to plant 10,000 trees in the city centre by 2030.",
            "The study was published in the journal Urban Climate on Friday.",
        ],
    },
    {
        "site": "northgate", "path": "news/manchester/northern-quarter-record-shops", "paywall": True,
        "title": "Inside the race to save the Northern Quarter's last record shops",
        "dek": "Rents are rising and footfall is falling. Can vinyl survive?",
        "author": "Sam Ardern", "published": "2024-11-09T11:00:00Z", "section": "Culture",
        "tags": ["Manchester", "Music"], "image": "records.svg",
        "body": [
            "On a wet Thursday afternoon, the queue outside one shop stretches around the corner.",
        ],
    },
    # ---- Valley Courier (Fresno) ----
    {
        "site": "valleycourier", "path": "agriculture/2024/11/08/farmers-brace-deeper-water-cuts",
        "title": "San Joaquin Valley farmers brace for deeper water cuts",
        "dek": "State officials warn of a low initial allocation after a dry autumn.",
        "author": "Luis Arredondo", "published": "2024-11-08T15:20:00Z", "section": "Agriculture",
        "tags": ["Water", "Agriculture", "Drought"], "image": "canal.svg",
        "body": [
            "Farmers across the San Joaquin Valley are preparing for another year of scarce surface water "
            "after the California Department of Water Resources warned that its first allocation for 2025 "
            "could be as low as 5 percent of requested supplies.",
            ("photo", "canal.svg", "Water flows through an irrigation canal near Firebaugh, California, on "
             "Wednesday, Nov. 6, 2024.", "Photo: Luis Arredondo / Valley Courier"),
            "A dry October left the state's major reservoirs below their historical average for the time of "
            "year, officials said. Shasta Lake held about 60 percent of its usual volume and San Luis "
            "Reservoir, which serves much of the western valley, was lower still.",
            "\u201cWe plant in January based on numbers we get in December,\u201d said Rosa Delgado, who grows "
            "tomatoes and pistachios on 1,200 acres near Firebaugh. \u201cIf the number is five percent, some "
            "fields simply stay empty.\u201d",
            "Growers who lose surface water often turn to wells, but the state's groundwater law now limits "
            "how much they can pump in the most overdrawn basins. Local agencies in Fresno County have begun "
            "buying land to take it out of production permanently.",
            "The Westlands Water District said it would ask federal officials to release more water from "
            "storage if winter storms arrive early. Forecasters at the National Weather Service said the "
            "outlook for December was close to even between wet and dry.",
        ],
    },
    {
        "site": "valleycourier", "path": "education/2024/11/07/clovis-robotics-team-world-championship",
        "title": "Clovis robotics team heads to world championship in Houston",
        "dek": "A 30-pound robot that stacks rings won the students a place among the top 600 teams.",
        "author": "Megan Tran", "published": "2024-11-07T18:45:00Z", "section": "Education",
        "tags": ["Clovis", "Schools", "Robotics"], "image": "robot.svg",
        "body": [
            "A team of 14 students from Clovis West High School has qualified for the world robotics "
            "championship in Houston next April after winning a regional tournament in Sacramento.",
            "Their robot, built over eight weeks from aluminium channel and a small computer, picks up plastic "
            "rings and stacks them on posts faster than any other entry at the regional event.",
            "\u201cWe rebuilt the arm three times,\u201d said team captain Jasmine Kaur, a senior. \u201cThe "
            "first version could lift the rings but not put them down gently. The third one finally works.\u201d",
            "The school's booster club needs to raise about $18,000 for travel and registration. Teacher and "
            "coach Daniel Whitfield said local businesses had already pledged half of it.",
            "Only about 600 of the more than 20,000 teams that competed this season will take part in the "
            "championship.",
        ],
    },
    # ---- Market Pulse (aggregator) ----
    {
        "site": "marketpulse", "path": "2024/11/09/almond-prices-climb-as-california-water-allocations-shrink/",
        "title": "Almond prices climb as California water allocations shrink",
        "dek": "Traders bet on smaller orchards next season as the state signals tight supplies.",
        "author": "Market Pulse Newsdesk", "published": "2024-11-09T13:10:00Z", "section": "Commodities",
        "tags": ["Commodities", "Agriculture"], "image": "almonds.svg",
        "body": [
            "Wholesale almond prices rose for a third straight week as traders bet that tight water supplies "
            "in California will force growers to leave some orchards dry next year.",
            "Prices for standard shelled almonds reached $2.85 a pound on Friday, up about 12 percent since "
            "the start of October, according to brokers in Sacramento. California produces around 80 percent "
            "of the world's almonds, most of them in the San Joaquin Valley.",
            "\u201cThe market is pricing in the risk of a very low water allocation,\u201d said Ethan Moreau, "
            "an agricultural commodities analyst at a brokerage in Chicago. \u201cAlmond trees need water every "
            "year. You cannot simply skip a season the way you can with tomatoes or cotton.\u201d",
            "Exporters said demand from India and the Middle East remained strong. The Almond Board of "
            "California is due to publish its next shipment report on Tuesday.",
            "Some analysts cautioned that a wet winter could reverse the rally quickly. Futures for other "
            "tree nuts, including pistachios and walnuts, were little changed on the week.",
        ],
    },
    # ---- Rheinblick (Köln, German) ----
    {
        "site": "rheinblick", "path": "koeln/2024/11/12/rhein-pegel-koeln-steigt.html",
        "title": "Rhein-Pegel in Köln steigt auf über sieben Meter",
        "dek": "Die Stadt schließt erste Uferwege, die Schifffahrt ist vorerst nicht betroffen.",
        "author": "Julia Brenner", "published": "2024-11-12T06:15:00Z", "section": "Köln",
        "tags": ["Hochwasser", "Rhein"], "image": "rhein.svg",
        "body": [
            "Nach tagelangem Regen im Süden Deutschlands steigt der Rhein in Köln weiter an. Am Dienstagmorgen "
            "zeigte der Pegel am Altstadtufer 7,20 Meter, bis Donnerstag rechnet die Hochwasserzentrale der "
            "Stadt mit bis zu 7,80 Metern.",
            "Die Stadt Köln hat erste Uferwege in Rodenkirchen und am Rheinauhafen gesperrt. Autofahrer sollen "
            "die Parkplätze am Ufer bis Mittwochabend räumen, teilte ein Sprecher der Stadtentwässerungsbetriebe "
            "mit.",
            "\u201eFür die Altstadt besteht derzeit keine Gefahr\u201c, sagte Einsatzleiter Markus Feldhaus. Die "
            "mobilen Schutzwände würden erst ab einem Pegel von 8,30 Metern aufgebaut.",
            "Die Schifffahrt auf dem Rhein ist bislang nicht eingeschränkt. Bei einem Pegel von 8,30 Metern "
            "gilt die erste Hochwassermarke, ab dann müssen Schiffe langsamer fahren. Die Köln-Düsseldorfer "
            "hat ihre Ausflugsfahrten für diese Woche dennoch abgesagt.",
            ("teaser", "Lesen Sie auch:", "Hochwasserschutz: Was die mobilen Wände leisten",
             "koeln/2024/01/08/hochwasserschutz-mobile-waende.html"),
            "Der Deutsche Wetterdienst erwartet ab Donnerstag trockeneres Wetter. Der Höchststand dürfte dann "
            "am Freitag erreicht sein.",
        ],
    },
    {
        "site": "rheinblick", "path": "kultur/2024/11/09/stadtbibliothek-sonntags-geoeffnet.html",
        "title": "Stadtbibliothek öffnet künftig auch sonntags",
        "dek": "Ein Pilotprojekt in der Zentralbibliothek am Neumarkt startet im Dezember.",
        "author": "Deniz Aydın", "published": "2024-11-09T10:00:00Z", "section": "Kultur",
        "tags": ["Bibliothek", "Köln"], "image": "bibliothek.svg",
        "body": [
            "Die Stadtbibliothek Köln öffnet ihre Zentralbibliothek am Neumarkt ab Dezember auch an Sonntagen. "
            "Das hat der Kulturausschuss des Stadtrats am Donnerstag beschlossen.",
            "Zunächst für ein Jahr soll die Bibliothek sonntags von 11 bis 17 Uhr geöffnet sein. Ausleihe und "
            "Rückgabe laufen dann über Automaten, Lesesäle und Arbeitsplätze stehen ohne Einschränkung zur "
            "Verfügung.",
            "\u201eViele Menschen haben nur am Wochenende Zeit für die Bibliothek\u201c, sagte "
            "Bibliotheksdirektorin Hannelore Vogt. An Samstagen sei das Haus regelmäßig überfüllt.",
            "Die zusätzlichen Kosten von rund 250.000 Euro im Jahr trägt zum Teil das Land Nordrhein-Westfalen. "
            "Nach dem Probejahr will der Rat über eine dauerhafte Lösung entscheiden.",
        ],
    },
    # ---- Courrier Atlantique (Bayonne, French and Spanish) ----
    {
        "site": "courrier", "path": "culture/2024/11/11/festival-jazz-biarritz-record-affluence",
        "title": "Le festival de jazz de Biarritz bat son record d\u2019affluence",
        "dek": "Plus de 38 000 spectateurs en cinq jours, selon les organisateurs.",
        "author": "Claire Etcheverry", "published": "2024-11-11T16:00:00Z", "section": "Culture",
        "tags": ["Biarritz", "Musique"], "image": "jazz.svg", "lang": "fr",
        "body": [
            "Le festival de jazz de Biarritz a accueilli plus de 38 000 spectateurs lors de sa dernière "
            "édition, un record depuis sa création il y a vingt-deux ans, ont annoncé dimanche les "
            "organisateurs.",
            "Les concerts gratuits sur la Grande Plage ont attiré à eux seuls près de 20 000 personnes, malgré "
            "un vent fort le samedi soir. La salle de la Gare du Midi a affiché complet pour les cinq "
            "soirées payantes.",
            "\u00ab Nous avons fait le pari d\u2019une programmation plus jeune, avec des artistes de la scène "
            "basque et espagnole, et le public a suivi \u00bb, s\u2019est félicité le directeur artistique "
            "Mikel Harriague.",
            ("teaser", "À lire aussi :", "Bayonne : les fêtes attirent un public record",
             "pays-basque/2024/08/01/fetes-bayonne-record.html"),
            "La municipalité de Biarritz, principal financeur de l\u2019événement, a confirmé son soutien pour "
            "l\u2019an prochain. Les dates de la prochaine édition seront annoncées en janvier.",
        ],
    },
    {
        "site": "courrier", "path": "euskadi/2024/11/10/donostia-amplia-red-bicicletas-publicas",
        "title": "San Sebastián amplía su red de bicicletas públicas con 40 nuevas estaciones",
        "dek": "El servicio llegará a los barrios altos con bicicletas eléctricas.",
        "author": "Itziar Goikoetxea", "published": "2024-11-10T09:30:00Z", "section": "Euskadi",
        "tags": ["San Sebastián", "Movilidad"], "image": "bici.svg", "lang": "es",
        "body": [
            "El Ayuntamiento de San Sebastián ampliará su red de bicicletas públicas con 40 nuevas estaciones "
            "y 400 bicicletas eléctricas a partir de la próxima primavera, según anunció el lunes el concejal "
            "de Movilidad.",
            "Las nuevas estaciones se instalarán sobre todo en los barrios altos de la ciudad, como Altza, "
            "Intxaurrondo y Aiete, donde las cuestas han frenado hasta ahora el uso de la bicicleta.",
            "\u00abQueremos que la bicicleta sea una opción real para toda la ciudad, no solo para el centro y "
            "la playa\u00bb, explicó el concejal Jon Arrieta. El abono anual mantendrá su precio de 30 euros.",
            "La ampliación costará 3,2 millones de euros, de los que el Gobierno Vasco aportará la mitad. El "
            "sistema registró el año pasado más de un millón de viajes.",
            ("line", "Síguenos en Instagram y X para no perderte ninguna noticia de Euskadi."),
        ],
    },
]

# Entries whose page is gone: the feed still lists them (the poller emits them,
# the extractor gets a 404 and dead-letters them).
GONE = [
    {
        "site": "harborledger", "path": "local/2024/11/12/council-budget-vote-postponed.html",
        "title": "Council budget vote postponed to December",
        "summary": "The vote was moved after a late change to the capital plan.",
        "author": "Renée Comeau", "published": "2024-11-12T12:00:00Z",
    },
]

# Headlines for the "related" and "most read" boxes (not pages of their own).
TEASERS = {
    "en": ["Weekend forecast: wind warnings for the coast", "Five things to know before you vote",
           "City unveils plan for 2,000 new homes", "Opinion: our harbours need a safety rethink",
           "Local bakery wins national award", "Why winter storms are getting harder to forecast"],
    "de": ["Neue Radwege am Ring: Was sich ändert", "KVB kündigt Fahrplanwechsel an",
           "Weihnachtsmärkte: Das sind die Öffnungszeiten", "Kommentar: Mehr Mut beim Wohnungsbau"],
    "fr": ["Surf : la saison des grandes vagues est lancée", "Bayonne : les fêtes attirent un public record",
           "Le prix de l\u2019immobilier continue de grimper sur la côte", "Un nouveau pont sur l\u2019Adour"],
    "es": ["Irún estrena un nuevo centro cultural", "El puerto de Pasaia recupera tráfico",
           "Tiempo: llega la primera ola de frío", "La Real Sociedad prepara el derbi"],
}
