"""Invented people and places for the generated extractions: French surnames and first names
(accents, particles, apostrophes), streets, towns around Lille, mail domains, teachers."""

SURNAMES = (
    "MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS", "MOREAU",
    "LAURENT", "SIMON", "MICHEL", "LEFÈVRE", "LEROY", "ROUX", "DAVID", "BERTRAND", "MOREL",
    "FOURNIER", "GIRARD", "BONNET", "DUPONT", "LAMBERT", "FONTAINE", "ROUSSEAU", "VINCENT",
    "MÜLLER", "LEFEBVRE", "FAURE", "ANDRÉ", "MERCIER", "BLANC", "GUÉRIN", "BOYER", "GARNIER",
    "CHEVALIER", "FRANÇOIS", "LEGRAND", "GAUTHIER", "GARCIA", "PERRIN", "ROBIN", "CLÉMENT",
    "MORIN", "NICOLAS", "HENRY", "ROUSSEL", "MATHIEU", "GAUTIER", "MASSON", "MARCHAND", "DUVAL",
    "DENIS", "DUMONT", "MARIE", "LEMAIRE", "NOËL", "MEYER", "DUFOUR", "MEUNIER", "BRUN",
    "BLANCHARD", "GIRAUD", "JOLY", "RIVIÈRE", "LUCAS", "BRUNET", "GAILLARD", "BARBIER", "ARNAUD",
    "MARTINEZ", "GÉRARD", "ROCHE", "RENARD", "SCHMITT", "ROY", "LEROUX", "COLIN", "VIDAL",
    "CARON", "PICARD", "ROGER", "FABRE", "AUBERT", "LEMOINE", "RENAUD", "DUMAS", "LACROIX",
    "OLIVIER", "PHILIPPE", "BOURGEOIS", "PIERRE", "BENOÎT", "REY", "LECLERC", "PAYET", "ROLLAND",
    "LECLERCQ", "GUILLAUME", "LECOMTE", "LÓPEZ", "JEAN", "DUPUY", "GUILLOT", "HUBERT", "BERGER",
    "CARPENTIER", "SÁNCHEZ", "DUPUIS", "MOULIN", "LOUIS", "DESCHAMPS", "HUET", "VASSEUR", "PEREZ",
    "BOUCHER", "FLEURY", "ROYER", "KLEIN", "JACQUET", "ADAM", "PARIS", "POIRIER", "MARTY", "AUBRY",
    "GUYOT", "CARRÉ", "CHARLES", "RENAULT", "CHARPENTIER", "MÉNARD", "MAILLARD", "BARON",
    "BERTIN", "BAILLY", "HERVÉ", "SCHNEIDER", "FERNANDEZ", "LE GALL", "COLLET", "LÉGER",
    "BOUVIER", "JULIEN", "PRÉVOST", "MILLET", "PERROT", "DANIEL", "LE ROUX", "COUSIN", "GERMAIN",
    "BRETON", "BESSON", "LANGLOIS", "RÉMY", "LE GOFF", "PELLETIER", "LÉVÊQUE", "PERRIER",
    "LEBLANC", "BARRÉ", "LEBRUN", "MARCHAL", "WEBER", "MALLET", "HAMON", "BOULANGER", "JACOB",
    "MONNIER", "MICHAUD", "RODRIGUEZ", "GUICHARD", "GILLET", "ÉTIENNE", "GRONDIN", "POULAIN",
    "TESSIER", "CHEVALLIER", "COLLIN", "CHAUVIN", "DA SILVA", "BOUCHET", "GAY", "LEMAÎTRE",
    "BÉNARD", "MARÉCHAL", "HUMBERT", "REYNAUD", "ANTOINE", "HOARAU", "PERRET", "BARTHÉLEMY",
    "CORDIER", "PICHON", "LEJEUNE", "GILBERT", "LAMY", "DELAUNAY", "PASQUIER", "CARLIER",
    "LAPORTE", "N'DIAYE", "EL AMRANI", "NGUYEN", "TRAORÉ", "DIALLO", "BENSALEM", "FERREIRA",
    "DOS SANTOS", "DE LA FONTAINE", "D'ALMEIDA", "SAINT-EXUPÉRY", "KOWALSKI", "HADDAD", "CISSÉ",
    "OUEDRAOGO", "BOURHIS", "LE BIHAN", "TANGUY", "CAMARA", "YILMAZ", "MENDES", "PEREIRA",
)  # fmt: skip
GIRLS = (
    "Léa", "Chloé", "Emma", "Manon", "Inès", "Jade", "Louise", "Alice", "Lina", "Rose", "Anna",
    "Ambre", "Mia", "Julia", "Zoé", "Léna", "Lou", "Juliette", "Agathe", "Iris", "Eva", "Nina",
    "Maëlys", "Anaïs", "Héloïse", "Clémence", "Éloïse", "Noémie", "Capucine", "Célia", "Yasmine",
    "Aïcha", "Fatoumata", "Maëlle", "Romane", "Camille", "Sarah", "Margaux", "Lucie", "Mathilde",
    "Océane", "Léonie", "Gabrielle", "Adèle", "Victoire", "Apolline", "Constance", "Salomé",
    "Bérénice", "Élise", "Noëlie", "Thaïs", "Naïa", "Soën", "Joséphine", "Hélène", "Inaya",
)  # fmt: skip
BOYS = (
    "Gabriel", "Léo", "Raphaël", "Arthur", "Louis", "Jules", "Adam", "Maël", "Lucas", "Hugo",
    "Noah", "Liam", "Gabin", "Sacha", "Paul", "Nathan", "Aaron", "Mohamed", "Ethan", "Tom",
    "Éden", "Léon", "Noé", "Tiago", "Théo", "Isaac", "Marius", "Victor", "Ayden", "Martin",
    "Naël", "Côme", "Timéo", "Mathéo", "Enzo", "Axel", "Rayan", "Ibrahima", "Baptiste", "Antoine",
    "Clément", "Mathis", "Évan", "Loïc", "Benoît", "Jérôme", "Joël", "Gaël", "François", "Anaël",
    "Ilyès", "Aurélien", "Rémi", "Félix", "Valentin", "Maxence", "Célestin", "Aloïs",
)  # fmt: skip
WOMEN = (
    "Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Sandrine", "Céline", "Aurélie",
    "Émilie", "Stéphanie", "Julie", "Caroline", "Élodie", "Audrey", "Virginie", "Laëtitia",
    "Karine", "Hélène", "Valérie", "Séverine", "Mélanie", "Amélie", "Anaïs", "Chloé", "Pauline",
    "Laure", "Fatima", "Nadia", "Samira", "Maïté", "Françoise", "Gaëlle", "Noémie", "Inès",
    "Léa", "Manon", "Aïssatou", "Ophélie", "Bénédicte", "Clémence", "Estelle", "Solène",
)  # fmt: skip
MEN = (
    "Nicolas", "Sébastien", "Julien", "Christophe", "Stéphane", "Frédéric", "Laurent", "David",
    "Olivier", "Jérôme", "Vincent", "Thomas", "Cédric", "Guillaume", "Mickaël", "Grégory",
    "Benoît", "François", "Raphaël", "Jean-Pierre", "Jean-Marc", "Hervé", "Thierry", "Mehdi",
    "Karim", "Youssef", "Mamadou", "Ibrahima", "Joël", "Gaël", "Loïc", "Anthony", "Romain",
    "Maxime", "Kévin", "Ludovic", "Fabrice", "Éric", "Pascal", "Arnaud", "Rémi", "Aurélien",
)  # fmt: skip
STREET_TYPES = ("rue", "avenue", "boulevard", "allée", "impasse", "place", "chemin", "square")
STREET_NAMES = (
    "Jean Jaurès", "Victor Hugo", "Pasteur", "de la République", "des Lilas", "de l'Église",
    "des Peupliers", "du Général de Gaulle", "Gambetta", "Jules Ferry", "de la Gare",
    "des Écoles", "du Moulin", "Émile Zola", "Voltaire", "Anatole France", "des Acacias",
    "de la Paix", "Saint-Exupéry", "des Tilleuls", "du Château", "de Verdun", "Carnot",
    "Pierre et Marie Curie", "Léon Blum", "des Mûriers", "de la Forêt", "du Stade", "Molière",
    "Louise Michel", "Aristide Briand", "des Cerisiers", "du 8 Mai 1945", "Frédéric Mistral",
)  # fmt: skip
CITIES = (
    ("59000", "Lille"), ("59100", "Roubaix"), ("59200", "Tourcoing"), ("59800", "Lille"),
    ("59130", "Lambersart"), ("59650", "Villeneuve-d'Ascq"), ("59170", "Croix"),
    ("59700", "Marcq-en-Barœul"), ("59290", "Wasquehal"), ("59160", "Lomme"),
)  # fmt: skip
DOMAINS = (
    "orange.fr", "free.fr", "wanadoo.fr", "gmail.com", "laposte.net", "hotmail.fr", "yahoo.fr",
    "sfr.fr", "outlook.fr", "bbox.fr",
)  # fmt: skip
TEACHERS = (
    "Mme Roux", "M. Petit", "Mme N'Diaye", "Mme Lefèvre", "M. Garnier", "Mme Bonnet",
    "M. François", "Mme Guérin", "Mme Müller", "M. Clément", "Mme Da Silva", "M. Noël",
)  # fmt: skip
