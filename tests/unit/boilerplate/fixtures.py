"""Syndicated copies written for these tests, with the kinds of clutter real copies carry.

Each page is a list of ``(kind, text, story)`` items in page order: ``story``
is True for the lines that belong to the story.  Items whose text holds a
newline are one block of several lines (a caption title above its caption).
``blocks(page)`` gives them as the extract stage would, ``flat(page)`` as a
feed's content flattened into paragraphs, ``story(page)`` the clean text
expected.
"""

from __future__ import annotations

S, X = True, False  # story, clutter

PORT_STRIKE = [  # harbourledger.example, English, with a French caption title
    ("paragraph", "By Marta Okonkwo", X),
    ("paragraph", "Updated: March 4, 2024 6:15 pm ET", X),
    ("paragraph", "Rotterdam, Netherlands — Dock workers at Europe's largest port walked off the job on Monday, "
                  "halting the unloading of container ships for the first time in more than a decade and leaving "
                  "dozens of vessels waiting at anchor in the North Sea.", S),
    ("paragraph", "The strike, called by the FNV Havens union after talks on automation and overtime pay broke "
                  "down last week, is expected to last at least 48 hours, the union said in a statement.", S),
    ("paragraph", "Why container rates are climbing again this spring", X),
    ("paragraph", "Shipping lines began diverting vessels to Antwerp and Hamburg within hours, according to port "
                  "authority data, although both ports warned that they had little spare capacity to absorb the "
                  "extra cargo.", S),
    ("paragraph", "A union source said the talks had stalled over the pace at which automated cranes would "
                  "replace crews on the night shift, and that no new date had been set.", S),
    ("paragraph", "Dock workers gather outside the terminal gates in Rotterdam, Netherlands, on March 3, 2024.", X),
    ("paragraph", "Jan de Vries/ANP via Getty Images", X),
    ("paragraph", "The union's own photographer, who once sold pictures to Getty Images, spent the morning "
                  "documenting the picket lines for an archive the union plans to publish next year.", S),
    ("paragraph", "Workers in Le Havre joined the action in the afternoon. As one docker put it, the mood was "
                  "\u201csolidarit\u00e9, mais pas \u00e0 n'importe quel prix,\u201d before the crowd moved "
                  "towards the harbour office.", S),
    ("paragraph", "Les dockers du Havre rejoignent le mouvement de gr\u00e8ve\n"
                  "Striking dock workers march through the port of Le Havre, France, March 2, 2024.", X),
    ("paragraph", "Employers' groups said the stoppage would cost the Dutch economy tens of millions of euros a "
                  "day and urged the government to appoint a mediator before the dispute spread further.", S),
    ("paragraph", "The union said it was ready to return to the table but would not accept any agreement that "
                  "cut jobs before 2030.", S),
    ("paragraph", "Share this article", X),
    ("paragraph", "Sign up for our daily shipping briefing", X),
    ("paragraph", "Source link", X),
    ("paragraph", "(This story was auto-generated from a syndicated feed; Harbour Ledger neither supports nor "
                  "owns any part of it.)", X),
    ("paragraph", "The post Dock strike spreads to second European port appeared first on Harbour Ledger.", X),
    ("paragraph", "Leave a Comment", X),
    ("paragraph", "Your email address will not be published. Required fields are marked *", X),
    ("paragraph", "Name *", X),
    ("paragraph", "Email *", X),
    ("paragraph", "Save my name, email, and website in this browser for the next time I comment.", X),
    ("paragraph", "Post Comment", X),
]

BIKE_LANE = [  # nordblick.example, German
    ("paragraph", "Von Lena Hartmann", X),
    ("paragraph", "Die Stadt hat am Samstag ihren ersten Radschnellweg eröffnet. Die neue Trasse verbindet auf "
                  "elf Kilometern den Hauptbahnhof mit dem Gewerbegebiet im Norden und soll vor allem Pendler "
                  "zum Umsteigen bewegen.", S),
    ("paragraph", "Lesen Sie auch: Neue Tempo-30-Zonen in der Innenstadt geplant", X),
    ("paragraph", "Der Bau hatte sich wegen gestiegener Materialkosten um fast zwei Jahre verzögert. Insgesamt "
                  "kostete das Projekt nach Angaben der Verwaltung rund 14 Millionen Euro, von denen der Bund "
                  "etwa die Hälfte übernahm.", S),
    ("paragraph", "Radfahrer auf der neuen Trasse am Stadtrand, aufgenommen am 12. Mai 2024.", X),
    ("paragraph", "Foto: Jens Becker/dpa", X),
    ("paragraph", "Der Fahrradclub lobte die Breite des Weges, kritisierte aber fehlende Beleuchtung an zwei "
                  "Unterführungen. Eine Quelle aus dem Rathaus sagte, Leuchten seien bereits bestellt.", S),
    ("paragraph", "Cyclists ride along the new route at dawn on its opening day", X),
    ("paragraph", "Bis Ende des Jahres sollen Zählstellen zeigen, wie viele Menschen den Weg tatsächlich nutzen. "
                  "Erst danach will der Stadtrat über eine Verlängerung nach Süden entscheiden.", S),
    ("paragraph", "Der Beitrag Stadt eröffnet ersten Radschnellweg erschien zuerst auf Nordblick.", X),
    ("paragraph", "Schreibe einen Kommentar", X),
    ("paragraph", "Deine E-Mail-Adresse wird nicht veröffentlicht. Erforderliche Felder sind mit * markiert", X),
]

HARVEST = [  # lecourrier.example, French
    ("paragraph", "Par Claire Dubois", X),
    ("paragraph", "Les vendanges ont commencé avec près de deux semaines d'avance dans plusieurs appellations de "
                  "Gironde, conséquence d'un été particulièrement chaud et sec, selon la chambre d'agriculture.", S),
    ("paragraph", "À lire aussi : La sécheresse menace les récoltes du Sud-Ouest", X),
    ("paragraph", "Les viticulteurs s'attendent à des volumes en baisse d'environ 15 % par rapport à l'an dernier, "
                  "mais plusieurs d'entre eux estiment que la qualité des raisins sera au rendez-vous.", S),
    ("paragraph", "Des vendangeurs au travail dans un vignoble près de Bordeaux, le 14 septembre 2023.", X),
    ("paragraph", "Photo : Philippe Martin / AFP", X),
    ("paragraph", "La main-d'œuvre reste le principal souci des exploitations : faute de saisonniers, certains "
                  "domaines ont dû recourir aux machines pour la première fois cette année.", S),
    ("paragraph", "Partager cet article", X),
    ("paragraph", "L\u2019article Les vendanges commencent tôt en Gironde est apparu en premier sur Le Courrier.", X),
    ("paragraph", "Laisser un commentaire", X),
    ("paragraph", "Votre adresse e-mail ne sera pas publiée. Les champs obligatoires sont indiqués avec *", X),
]

RESERVOIRS = [  # diariosur.example, Spanish
    ("paragraph", "Por Javier Ortega", X),
    ("paragraph", "Los embalses de la cuenca mediterránea andaluza han caído por debajo del 20 % de su capacidad, "
                  "el nivel más bajo desde que existen registros, según los datos publicados este martes por la "
                  "Junta de Andalucía.", S),
    ("paragraph", "Lee también: El Gobierno aprueba nuevas ayudas para los agricultores", X),
    ("paragraph", "Las autoridades han pedido a los ayuntamientos que reduzcan el riego de parques y jardines y "
                  "no descartan restricciones nocturnas en el suministro si no llueve antes del otoño.", S),
    ("paragraph", "Vista aérea del embalse de La Viñuela, en Málaga, el 3 de agosto de 2023.", X),
    ("paragraph", "Foto: Jorge Zapata / EFE", X),
    ("paragraph", "Los agricultores de la Axarquía, donde se cultivan aguacates y mangos, aseguran que ya han "
                  "perdido parte de la cosecha y reclaman obras para reutilizar agua depurada.", S),
    ("paragraph", "La entrada Los embalses andaluces caen al 20 % se publicó primero en Diario Sur.", X),
    ("paragraph", "Deja una respuesta", X),
    ("paragraph", "Tu dirección de correo electrónico no será publicada. Los campos obligatorios están marcados con *", X),
    ("paragraph", "Suscríbete a nuestro boletín", X),
]

PAGES = {
    "port-strike": ("harbourledger.example", "Dock strike spreads to second European port", ["Marta Okonkwo"], PORT_STRIKE),
    "bike-lane": ("nordblick.example", "Stadt eröffnet ersten Radschnellweg", ["Lena Hartmann"], BIKE_LANE),
    "harvest": ("lecourrier.example", "Les vendanges commencent tôt en Gironde", ["Claire Dubois"], HARVEST),
    "reservoirs": ("diariosur.example", "Los embalses andaluces caen al 20 %", ["Javier Ortega"], RESERVOIRS),
}


def blocks(page: list) -> list[dict]:
    """The page as extract gives it: one block per item."""
    return [{"kind": kind, "text": text} for kind, text, _ in page]


def flat(page: list, sep: str = "\n\n") -> str:
    """The page as a feed's content flattened into paragraphs."""
    return sep.join(text for _, text, _ in page)


def story(page: list) -> str:
    """The clean text expected: the story lines alone."""
    return "\n\n".join(text for _, text, keep in page if keep)


def value(name: str, *, as_blocks: bool = True, article_id: str | None = None, url: str | None = None) -> dict:
    """An ``articles.unique`` value carrying page ``name``."""
    site, title, authors, page = PAGES[name]
    url = url or f"https://www.{site}/news/{name}"
    return {
        "schema_version": 1, "id": article_id or f"id-{name}", "url": url, "canonical_url": url,
        "feed_url": f"https://www.{site}/feed/", "title": title, "authors": authors,
        "text": flat(page), "blocks": blocks(page) if as_blocks else [],
        "text_source": "page" if as_blocks else "feed", "source": site,
        "dedupe": {"status": "unique", "cluster_id": article_id or f"id-{name}"},
    }
