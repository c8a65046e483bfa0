"""Writes tests/data/topics_labelled.json: a labelled synthetic set of citizens' contributions
for the topic engine (exporter/topics.py), its test and its benchmark.

Every sentence below was written by hand, as citizens write them (registers, lengths, personal
context, SMS style, a few mistakes); the script only combines them: for each item, one or two
"need" sentences and one "solution" sentence of a topic, sometimes a personal opening, then
typos (accents dropped, a letter lost or doubled, "rdv", no capital) drawn from a fixed seed.
Some items are off-topic (truth label "hors sujet"). Run it again after editing a phrase:

    .venv/bin/python tests/data/make_topics_labelled.py
"""

from __future__ import annotations

import json
import random
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

OUT = Path(__file__).with_name("topics_labelled.json")
OFF_TOPIC = "hors sujet"
SEED = 20221114

THEME_1 = "acces-medecin-traitant"
THEME_2 = "continuite-soins-non-programmes"
THEME_3 = "attractivite-metiers"
THEME_4 = "prevention"

#: theme -> topic label (truth) -> (needs, solutions)
TOPICS: dict[str, dict[str, tuple[list[str], list[str]]]] = {
    THEME_1: {
        "médecin traitant introuvable": (
            [
                "Depuis le départ en retraite de notre médecin, impossible de trouver un "
                "nouveau médecin traitant.",
                "Aucun médecin traitant n'accepte de nouveaux patients dans le secteur.",
                "Je n'ai plus de médecin traitant depuis deux ans, tous les cabinets me disent "
                "qu'ils sont complets.",
                "Ma mère a 82 ans et elle n'a pas de médecin traitant, personne ne veut la "
                "prendre.",
                "Trouver un généraliste qui accepte d'être médecin traitant relève du parcours "
                "du combattant.",
                "Pas de médecin traitant = pas de remboursement correct, c'est injuste.",
                "Les généralistes du coin ne prennent plus personne comme patient.",
                "On a emménagé il y a un an et toujours pas de médecin traitant pour les enfants.",
                "J'ai appelé plus de dix cabinets, aucun ne veut devenir mon médecin traitant.",
                "Le médecin du village est parti sans remplaçant, 1500 patients se retrouvent "
                "sans médecin traitant.",
                "plus de medecin traitant depuis que le docteur est parti",
            ],
            [
                "Obliger les nouveaux médecins installés à prendre des patients sans médecin "
                "traitant.",
                "Que la CPAM attribue un médecin traitant aux personnes qui n'en ont pas.",
                "Une liste d'attente commune pour trouver un médecin traitant.",
                "Faire venir des médecins généralistes dans les communes qui n'en ont plus.",
                "Prioriser les personnes âgées et malades chroniques pour l'attribution d'un "
                "médecin traitant.",
                "Un numéro unique pour trouver un généraliste qui accepte de nouveaux patients.",
                "Accepter que l'infirmière ou l'équipe soit désignée comme référent à la place "
                "du médecin traitant.",
            ],
        ),
        "délais de rendez-vous chez les spécialistes": (
            [
                "Il faut attendre huit mois pour un rendez-vous chez l'ophtalmologue.",
                "Les délais pour voir un dermatologue sont de plus d'un an.",
                "Six mois d'attente pour un rendez-vous chez le cardiologue, c'est trop long "
                "quand on est malade.",
                "Pour un gynécologue il faut appeler des dizaines de fois et attendre des mois.",
                "Les spécialistes ne donnent pas de rendez-vous avant l'année prochaine.",
                "Mon fils attend un rdv chez l'orthophoniste depuis 14 mois.",
                "Les délais chez le psychiatre et le rhumatologue sont interminables.",
                "Obtenir un rendez-vous chez un spécialiste prend des mois, certains renoncent.",
                "Doctolib n'affiche aucun créneau de spécialiste avant plusieurs mois.",
                "L'ophtalmo le plus proche ne prend plus de nouveaux patients, délais énormes.",
            ],
            [
                "Des consultations avancées de spécialistes dans les hôpitaux de proximité.",
                "Réserver des créneaux de rendez-vous urgents chez les spécialistes pour les "
                "médecins traitants.",
                "Plus d'orthoptistes pour faire les examens de la vue et réduire les délais "
                "chez l'ophtalmologue.",
                "La télé-expertise entre le généraliste et le spécialiste pour éviter des "
                "mois d'attente.",
                "Former davantage de spécialistes et les répartir mieux sur le territoire.",
                "Un délai maximum garanti pour obtenir un rendez-vous chez un spécialiste.",
            ],
        ),
        "maisons de santé": (
            [
                "Les professionnels de santé travaillent chacun de leur côté, sans coordination.",
                "Il n'y a pas de maison de santé dans notre canton alors que les jeunes "
                "médecins veulent travailler en groupe.",
                "Le kiné, l'infirmière et le médecin ne se parlent pas, on répète tout à chacun.",
                "Notre commune a un local vide qui pourrait accueillir des soignants regroupés.",
                "Le projet de maison de santé pluriprofessionnelle est bloqué depuis trois ans.",
                "Le pôle de santé est trop loin, il faudrait regrouper les soignants près de "
                "chez nous.",
                "L'exercice coordonné n'existe pas ici, chaque cabinet est isolé.",
                "Les médecins seuls dans leur cabinet s'épuisent, ils ne veulent plus "
                "exercer isolés.",
                "On manque d'un lieu unique où trouver médecin, infirmier, kiné et psychologue.",
            ],
            [
                "Ouvrir une maison de santé pluriprofessionnelle avec des locaux fournis par "
                "la mairie.",
                "Créer une maison de santé qui regroupe médecins, infirmiers, kinés et pharmacien.",
                "Financer les maisons de santé et les centres de santé dans chaque "
                "intercommunalité.",
                "Soutenir la CPTS pour coordonner les professionnels du territoire.",
                "Un dossier partagé entre tous les soignants de la maison de santé.",
                "Aider les communes à construire des maisons médicales pluridisciplinaires.",
            ],
        ),
        "visites à domicile des personnes âgées": (
            [
                "Les médecins ne font plus de visites à domicile, ma grand-mère ne peut pas se "
                "déplacer.",
                "Les personnes âgées isolées à la campagne ne voient plus jamais de médecin.",
                "Mon père est en fauteuil roulant et aucun médecin ne vient à la maison.",
                "Les visites à domicile ont disparu, les personnes dépendantes restent sans soins.",
                "Les personnes âgées sans voiture ne peuvent pas aller au cabinet.",
                "Il n'y a plus de médecin qui se déplace chez les personnes âgées malades.",
                "Les aidants doivent porter leurs parents jusqu'au cabinet car plus personne "
                "ne se déplace.",
                "En EHPAD et à domicile, les personnes âgées attendent des semaines une visite "
                "du médecin.",
            ],
            [
                "Rémunérer correctement les visites à domicile pour que les médecins les "
                "fassent à nouveau.",
                "Des infirmières en pratique avancée qui se déplacent chez les personnes âgées.",
                "Une équipe mobile de soins à domicile pour les personnes âgées et handicapées.",
                "La téléconsultation à domicile avec l'aide de l'infirmière pour les "
                "personnes âgées.",
                "Un médecin dédié aux visites à domicile dans chaque secteur.",
            ],
        ),
    },
    THEME_2: {
        "urgences saturées": (
            [
                "Aux urgences on attend dix heures sur un brancard.",
                "Les urgences de l'hôpital sont saturées, surtout le week-end.",
                "Mon fils a attendu huit heures aux urgences pour une simple entorse.",
                "Les urgences ferment la nuit faute de médecins urgentistes.",
                "Le service des urgences est débordé par des gens qui n'ont pas de médecin.",
                "On passe toute la nuit aux urgences, le personnel est épuisé.",
                "Urgences fermées l'été, il faut faire 50 km pour en trouver d'autres.",
                "Les urgences sont engorgées par des consultations qui pourraient être "
                "traitées ailleurs.",
                "Attente interminable aux urgences pédiatriques, les enfants pleurent des heures.",
                "urgences completement saturées, 12h d'attente",
            ],
            [
                "Appeler le 15 avant d'aller aux urgences pour être orienté.",
                "Renforcer les effectifs des urgences et ouvrir plus de lits d'aval.",
                "Ouvrir un centre de soins non programmés à côté des urgences pour les cas "
                "simples.",
                "Développer le service d'accès aux soins pour désengorger les urgences.",
                "Une maison médicale de garde à l'entrée des urgences.",
                "Informer la population sur quand aller aux urgences et quand appeler son médecin.",
            ],
        ),
        "transport vers l'hôpital en zone rurale": (
            [
                "Quand on habite à la campagne sans voiture, aller à l'hôpital est impossible.",
                "L'hôpital est à 45 minutes et il n'y a aucun bus.",
                "Les personnes âgées de nos villages ne peuvent pas se rendre à leurs "
                "rendez-vous à l'hôpital.",
                "Le taxi conventionné refuse les petits trajets et le bus passe deux fois par "
                "jour.",
                "Pas de transport en commun pour aller aux consultations à l'hôpital depuis le "
                "village.",
                "Je dois prendre un jour de congé pour emmener ma voisine à l'hôpital, elle "
                "n'a pas de transport.",
                "En zone rurale, les trajets vers l'hôpital coûtent cher et prennent la journée.",
                "Les ambulances mettent très longtemps à arriver dans les villages isolés.",
                "Sans permis ni voiture, impossible d'aller à la chimio à l'hôpital.",
            ],
            [
                "Une navette solidaire entre les villages et l'hôpital.",
                "Rembourser le transport vers l'hôpital pour les personnes sans voiture.",
                "Du transport à la demande pour les rendez-vous médicaux en zone rurale.",
                "Organiser le covoiturage avec des bénévoles pour aller à l'hôpital.",
                "Des bus réguliers qui desservent l'hôpital depuis les communes rurales.",
                "Faire venir des consultations de l'hôpital dans les bourgs pour éviter les "
                "trajets.",
            ],
        ),
        "permanence des soins le soir et le week-end": (
            [
                "Le soir et le week-end, il n'y a aucun médecin de garde dans le secteur.",
                "Le samedi après-midi, impossible de consulter, tout est fermé.",
                "La pharmacie de garde est à 30 km le dimanche.",
                "Quand l'enfant a de la fièvre un dimanche, on n'a pas d'autre choix que les "
                "urgences.",
                "Plus de médecin de garde la nuit, le 15 ne répond pas assez vite.",
                "Les gardes ne sont plus assurées le week-end, les généralistes ne veulent "
                "plus les faire.",
                "Après 19h, plus aucun cabinet n'est ouvert et SOS médecins ne vient pas "
                "jusqu'ici.",
                "Les jours fériés, aucune permanence de soins n'est organisée.",
            ],
            [
                "Une maison médicale de garde ouverte le soir et le week-end.",
                "Organiser un roulement des généralistes pour les gardes du samedi et du dimanche.",
                "Ouvrir les cabinets plus tard le soir avec des horaires élargis.",
                "Mieux rémunérer les gardes de nuit et de week-end.",
                "Une permanence de soins avec des créneaux sans rendez-vous le samedi.",
                "Publier clairement la liste des médecins et pharmacies de garde.",
            ],
        ),
        "retour à domicile après l'hôpital": (
            [
                "À la sortie de l'hôpital, personne n'a prévenu notre médecin traitant.",
                "Mon père est sorti de l'hôpital un vendredi soir sans aide à domicile organisée.",
                "Après une hospitalisation, on se retrouve seul avec les ordonnances et sans "
                "infirmière.",
                "Le compte rendu d'hospitalisation arrive chez le médecin trois semaines "
                "après la sortie.",
                "Le retour à la maison après l'opération n'était pas préparé, aucun suivi.",
                "Les sorties d'hôpital sont faites trop vite, les patients reviennent aux "
                "urgences.",
                "Personne ne coordonne les soins entre l'hôpital et la ville.",
                "Ma tante est rentrée chez elle après l'hospitalisation sans lit médicalisé ni "
                "aide.",
            ],
            [
                "Un coordinateur de parcours qui prépare la sortie d'hôpital avec la famille.",
                "Envoyer le compte rendu de sortie au médecin traitant le jour même.",
                "Une infirmière de liaison entre l'hôpital et le domicile.",
                "Organiser l'aide à domicile avant la sortie d'hospitalisation.",
                "Un appel systématique du patient le lendemain de son retour à la maison.",
            ],
        ),
    },
    THEME_3: {
        "installation des jeunes médecins": (
            [
                "Les jeunes médecins ne veulent pas s'installer dans nos campagnes.",
                "Aucun jeune médecin ne vient s'installer, le territoire n'est pas attractif.",
                "Les internes font leur stage ici mais repartent ensuite en ville.",
                "Les aides à l'installation ne suffisent pas à attirer des médecins dans le "
                "bassin minier.",
                "Un jeune médecin ne trouve ni logement, ni emploi pour son conjoint, ni "
                "école pour ses enfants ici.",
                "La commune offre un cabinet gratuit et pourtant aucun candidat ne se présente.",
                "Les jeunes diplômés préfèrent les grandes villes et le littoral.",
                "Notre secteur est un désert médical, personne ne veut venir s'y installer.",
            ],
            [
                "Loger gratuitement les internes et les jeunes médecins pendant leurs "
                "premières années.",
                "Aider le conjoint à trouver un travail quand un médecin s'installe.",
                "Faire découvrir le territoire aux internes avec des stages bien accueillis.",
                "Conditionner les aides à l'installation à un engagement de plusieurs années.",
                "Réguler l'installation des médecins comme pour les pharmacies.",
                "Une prime d'installation plus forte dans les zones sous-dotées.",
            ],
        ),
        "conditions de travail des soignants": (
            [
                "Les infirmières sont épuisées, les services manquent de bras.",
                "Les salaires des aides-soignantes sont trop bas pour le travail demandé.",
                "Les soignants quittent l'hôpital à cause des horaires et du manque de "
                "reconnaissance.",
                "Ma fille infirmière a démissionné après cinq ans, elle n'en pouvait plus.",
                "Les plannings changent tout le temps, les soignants n'ont plus de vie de famille.",
                "Dans les EHPAD, le personnel est en sous-effectif permanent.",
                "Le métier d'aide-soignant n'attire plus, trop dur et mal payé.",
                "Burn-out chez les infirmiers et les aides-soignants, les postes restent vacants.",
            ],
            [
                "Augmenter les salaires des infirmiers et des aides-soignants.",
                "Des plannings stables et respectés pour les soignants.",
                "Plus de personnel par service pour alléger la charge de travail.",
                "Des crèches aux horaires adaptés pour les enfants des soignants.",
                "Reconnaître la pénibilité du métier de soignant.",
                "Améliorer les conditions de travail à l'hôpital et en EHPAD.",
            ],
        ),
        "former les soignants sur le territoire": (
            [
                "Il n'y a pas d'école d'infirmiers dans le département, les jeunes partent "
                "étudier ailleurs et ne reviennent pas.",
                "Les étudiants en médecine doivent aller à Lille ou Amiens pour faire leurs "
                "études.",
                "Pas assez de places en formation d'aide-soignant près de chez nous.",
                "Les jeunes du territoire qui voudraient devenir médecin n'osent pas, les "
                "études sont trop loin.",
                "Le numerus clausus a créé la pénurie, on n'a pas formé assez de médecins.",
                "Les maîtres de stage manquent pour accueillir les étudiants ici.",
                "Peu de formations en santé accessibles sans déménager.",
            ],
            [
                "Ouvrir une antenne de la faculté de médecine dans le territoire.",
                "Plus de places dans les instituts de formation en soins infirmiers locaux.",
                "Des bourses d'études pour les jeunes du territoire qui s'engagent à revenir "
                "y exercer.",
                "Former plus de maîtres de stage chez les généralistes.",
                "Des formations d'aide-soignant en alternance près de chez soi.",
                "Encourager les lycéens du coin vers les études de santé.",
            ],
        ),
        "temps perdu en paperasse": (
            [
                "Les médecins passent des heures sur la paperasse au lieu de soigner.",
                "Trop de tâches administratives pour les soignants, les certificats inutiles "
                "prennent du temps médical.",
                "Mon médecin me dit qu'il passe un tiers de son temps sur l'administratif.",
                "Les infirmières remplissent des formulaires toute la journée.",
                "Les certificats pour le sport ou la cantine encombrent les consultations.",
                "Trop de bureaucratie, les logiciels ne communiquent pas entre eux.",
                "Le temps administratif fait fuir les médecins libéraux.",
            ],
            [
                "Des assistants médicaux pour s'occuper du secrétariat et de l'administratif.",
                "Supprimer les certificats médicaux inutiles.",
                "Simplifier les démarches administratives avec la sécurité sociale.",
                "Un secrétariat partagé entre plusieurs cabinets.",
                "Des logiciels simples et compatibles pour réduire la paperasse.",
            ],
        ),
    },
    THEME_4: {
        "santé mentale des jeunes": (
            [
                "Beaucoup d'adolescents vont mal depuis le covid, anxiété et dépression.",
                "Le CMP a un an d'attente pour un enfant en souffrance psychique.",
                "Ma fille a fait une tentative de suicide et nous n'avons trouvé aucun "
                "pédopsychiatre.",
                "Les jeunes n'osent pas parler de leur mal-être et ne savent pas à qui s'adresser.",
                "Pas de psychologue accessible pour les étudiants, les consultations coûtent "
                "trop cher.",
                "Le harcèlement et les réseaux sociaux abîment la santé mentale des ados.",
                "Les urgences psychiatriques pour mineurs sont saturées.",
                "Trop de jeunes en détresse psychologique sans aucun suivi.",
            ],
            [
                "Des psychologues gratuits pour les jeunes, dans les lycées et les universités.",
                "Une maison des adolescents dans chaque territoire.",
                "Former les enseignants et les animateurs aux premiers secours en santé mentale.",
                "Plus de pédopsychiatres et de places en CMP pour enfants.",
                "Une ligne d'écoute et un lieu d'accueil anonyme pour les jeunes.",
            ],
        ),
        "prévention à l'école": (
            [
                "Les enfants mangent mal et ne bougent pas assez, l'obésité augmente.",
                "Il n'y a presque plus d'infirmière scolaire ni de médecin scolaire.",
                "Les enfants passent trop de temps devant les écrans.",
                "Les caries chez les enfants augmentent, personne ne leur apprend à se "
                "brosser les dents.",
                "La visite médicale à l'école n'est plus faite pour beaucoup d'élèves.",
                "L'éducation à la santé est absente des programmes scolaires.",
                "À la cantine, les repas sont trop sucrés et trop gras.",
            ],
            [
                "Des ateliers sur l'alimentation et le sport à l'école primaire.",
                "Recruter des infirmières scolaires dans chaque établissement.",
                "Un dépistage de la vue, de l'audition et des dents pour tous les élèves.",
                "Des cours de prévention santé en classe, dès le collège.",
                "Plus d'activité physique quotidienne à l'école.",
                "Sensibiliser les parents et les élèves aux dangers des écrans.",
            ],
        ),
        "dépistage des cancers": (
            [
                "Beaucoup de femmes ne font pas leur mammographie de dépistage.",
                "Le dépistage du cancer colorectal est mal connu, les gens ne font pas le test.",
                "Le centre de radiologie le plus proche pour une mammographie est à une heure.",
                "Les cancers sont découverts trop tard dans notre région.",
                "Les courriers d'invitation au dépistage finissent à la poubelle.",
                "Peu de gens font le frottis de dépistage du cancer du col de l'utérus.",
                "Les hommes ne se font jamais dépister, par peur ou par manque d'info.",
            ],
            [
                "Un camion de dépistage qui passe dans les villages pour les mammographies.",
                "Distribuer le test de dépistage du cancer colorectal en pharmacie.",
                "Des campagnes de dépistage organisées avec les mairies et les associations.",
                "Que les pharmaciens et les infirmiers puissent relancer pour le dépistage.",
                "Rappeler par téléphone les personnes qui n'ont pas fait leur dépistage.",
            ],
        ),
        "addictions": (
            [
                "L'alcool fait des ravages chez les jeunes le week-end.",
                "Le tabac commence dès le collège, et la chicha aussi.",
                "La drogue circule devant les lycées, le cannabis est banalisé.",
                "L'alcoolisme touche beaucoup de familles dans notre territoire.",
                "Les jeunes vapotent sans savoir que c'est addictif.",
                "Aucune consultation d'addictologie à moins d'une heure de route.",
                "Les addictions aux jeux et aux écrans ne sont pas prises en charge.",
            ],
            [
                "Des consultations jeunes consommateurs dans chaque ville.",
                "Des actions de prévention contre l'alcool et le tabac dans les collèges.",
                "Aider gratuitement à arrêter de fumer avec des substituts nicotiniques.",
                "Ouvrir un centre d'addictologie de proximité.",
                "Des éducateurs de rue pour parler drogue et alcool avec les jeunes.",
            ],
        ),
    },
}

#: Off-topic contributions (any theme): complaints about other things, thanks, nonsense.
OFF_TOPIC_TEXTS: list[tuple[str, str]] = [
    ("Les routes sont pleines de trous dans la commune.", "Refaire la chaussée rue Jean Jaurès."),
    ("Merci pour cette consultation.", "Continuez comme ça."),
    ("Je ne sais pas quoi mettre.", "Rien."),
    ("Les impôts locaux ont encore augmenté.", "Baisser la taxe foncière."),
    ("Internet ne marche pas bien dans le village.", "Installer la fibre rapidement."),
    ("test", "test"),
    ("Le marché du dimanche manque de producteurs locaux.", "Faire venir plus de maraîchers."),
    ("Il y a trop de chiens qui aboient la nuit dans mon quartier.", "Verbaliser les maîtres."),
    ("Les trains pour Paris sont toujours en retard.", "Plus de TER le matin."),
    ("Ce questionnaire est trop long.", "Faire plus court."),
    ("La salle des fêtes est fermée depuis le covid.", "Rouvrir la salle pour les associations."),
    ("Le ramassage des ordures ne passe plus le lundi.", "Revenir à deux collectes."),
    ("Les éoliennes défigurent le paysage.", "Arrêter les projets éoliens."),
    ("Aucun avis.", "Je ne sais pas."),
    ("L'éclairage public est éteint trop tôt.", "Rallumer les lampadaires jusqu'à minuit."),
    ("Le stade de foot a besoin d'un nouveau vestiaire.", "Subventionner le club de foot."),
    ("Les politiques ne nous écoutent jamais.", "Démission !"),
    ("La boulangerie du bourg a fermé.", "Aider les commerces de proximité."),
    ("Il pleut trop dans le Nord.", "Du soleil svp 😀"),
    ("Les loyers sont trop chers en centre-ville.", "Construire des logements sociaux."),
    ("La piscine intercommunale est trop petite.", "Agrandir la piscine."),
    ("La poste ferme l'après-midi.", "Rouvrir le bureau de poste toute la journée."),
    ("Mon voisin fait du bruit.", "Que la mairie intervienne."),
    ("👍👍", "🙏"),
]

#: Openings some citizens write before their need (shared across topics: realistic noise).
OPENINGS = [
    "Bonjour, ",
    "Habitante d'un petit village de l'Aisne, ",
    "Je suis retraité. ",
    "Maman de trois enfants, je constate que ",
    "Dans notre commune, ",
    "En tant qu'aide-soignante, je vois que ",
    "Franchement, ",
    "Comme beaucoup de gens ici, je trouve que ",
    "Sur le secteur de Saint-Quentin, ",
    "Bonjour à tous, ",
    "Je vis à Calais. ",
    "C'est simple : ",
]

#: Closings some citizens add after their solution.
CLOSINGS = [
    " Merci.",
    " C'est urgent !",
    " Merci de nous écouter.",
    " Il faut agir vite.",
    " On compte sur vous.",
    "",
    "",
]

#: Contributions written per topic.
PER_TOPIC = 21


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _typo(rng: random.Random, text: str) -> str:
    """One or two mistakes as people make them typing on a phone."""
    kind = rng.choice(["accents", "drop", "double", "lower", "sms", "swap"])
    if kind == "accents":
        return _strip_accents(text)
    if kind == "lower":
        return text[0].lower() + text[1:].rstrip(".")
    if kind == "sms":
        for long, short in [
            ("rendez-vous", "rdv"),
            ("pour ", "pr "),
            ("beaucoup", "bcp"),
            ("dans ", "ds "),
            ("quand", "qd"),
            ("personnes", "pers"),
        ]:
            text = text.replace(long, short)
        return text
    words = text.split(" ")
    long_words = [i for i, w in enumerate(words) if len(w) > 5 and w.isalpha()]
    if not long_words:
        return text
    i = rng.choice(long_words)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    if kind == "drop":
        words[i] = w[:j] + w[j + 1 :]
    elif kind == "double":
        words[i] = w[:j] + w[j] + w[j:]
    else:  # swap two neighbouring letters
        words[i] = w[: j - 1] + w[j] + w[j - 1] + w[j + 1 :]
    return " ".join(words)


def _after(opening: str, text: str) -> str:
    """``text`` after ``opening``: a lower-case start mid-sentence (not for an acronym)."""
    if not opening.endswith(". ") and not text[1:2].isupper():
        text = text[0].lower() + text[1:]
    return opening + text


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def build(seed: int = SEED, per_topic: int = PER_TOPIC) -> list[dict[str, str]]:
    """The labelled set (``per_topic`` contributions per topic, plus the off-topic ones);
    bench/topics.py asks for more per topic to measure the engine at scale."""
    rng = random.Random(seed)
    items: list[dict[str, str]] = []
    for theme, topics in TOPICS.items():
        for label, (needs, solutions) in topics.items():
            for k in range(per_topic):
                need = needs[k % len(needs)]
                if rng.random() < 0.2:  # a longer contribution: two observations
                    other = rng.choice([n for n in needs if n != need])
                    need = f"{_sentence(need)} {other}"
                if rng.random() < 0.3:
                    need = _after(rng.choice(OPENINGS), need)
                solution = rng.choice(solutions)
                if rng.random() < 0.12:  # a very short answer
                    solution = ""
                elif rng.random() < 0.3:
                    solution += rng.choice(CLOSINGS)
                if rng.random() < 0.35:
                    need = _typo(rng, need)
                if solution and rng.random() < 0.25:
                    solution = _typo(rng, solution)
                items.append({"theme": theme, "topic": label, "need": need, "solution": solution})
    themes = list(TOPICS)
    for k, (need, solution) in enumerate(OFF_TOPIC_TEXTS):
        items.append(
            {
                "theme": themes[k % len(themes)],
                "topic": OFF_TOPIC,
                "need": need,
                "solution": solution,
            }
        )
    rng.shuffle(items)
    # participants: most post once, some twice or three times (same theme or not)
    participants: list[str] = []
    number = 0
    while len(participants) < len(items):
        number += 1
        participants += [f"P{number:04d}"] * rng.choice([1, 1, 1, 1, 1, 1, 2, 3])
    for k, item in enumerate(items):
        item["participant"] = participants[k]
        item["id"] = f"HDF-TST-{k + 1:06d}"
    return [
        {key: item[key] for key in ("id", "theme", "topic", "need", "solution", "participant")}
        for item in items
    ]


def purity_and_coverage(
    topics: Iterable[Sequence[str]], truth: dict[str, str]
) -> tuple[float, float]:
    """How well ``topics`` (each a sequence of contribution ids) match the truth labels.

    Purity: of the contributions placed in a topic, the share whose truth label is the majority
    truth label of their topic. Coverage: of the on-topic contributions (truth label not
    "hors sujet"), the share placed in a topic whose majority truth label is their own.
    """
    placed = pure = well_placed = 0
    for ids in topics:
        majority, count = Counter(truth[c] for c in ids).most_common(1)[0]
        placed += len(ids)
        pure += count
        if majority != OFF_TOPIC:
            well_placed += count
    on_topic = sum(1 for label in truth.values() if label != OFF_TOPIC)
    return (pure / placed if placed else 0.0), (well_placed / on_topic if on_topic else 0.0)


def main() -> None:
    items = build()
    OUT.write_text(json.dumps(items, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(items)} contributions written to {OUT}")


if __name__ == "__main__":
    main()
