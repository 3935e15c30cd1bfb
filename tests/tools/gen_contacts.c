/*
 * gen_contacts: writes a CSV file of realistic, made-up contacts for demos,
 * tests and benchmarks. Names, addresses, phone numbers, postal codes and
 * job titles come from thirteen locales in four scripts (Latin with its
 * diacritics and Yoruba tone marks, Cyrillic, Han, Devanagari), so the
 * import, folding and search paths see the text they meet in the field.
 *
 * Invariants, for any seed and any count up to GEN_MAX_COUNT:
 *  - the output depends only on (seed, row): a longer run starts with the
 *    rows of a shorter one, and a run repeated with the same seed is
 *    byte-for-byte the same (own PRNG, never rand());
 *  - no two rows trip the store's duplicate detection: e-mails carry the
 *    row number, phone subscriber numbers are a bijection of the row's
 *    index within its locale, and within a locale every row gets a distinct
 *    (given name, family name, locality) combination (a bijection over the
 *    combination space; past it, a second given name tells rows apart).
 *    Localities differ between locales, so rows of two locales never share
 *    a locality.
 *  - phone numbers are written with their international +CC prefix, so
 *    they mean the same whatever region the importing node is set to.
 *
 * Usage: gen_contacts --count N [--seed S] [--out FILE]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GEN_MAX_COUNT 1000000u

#define N_(a) (sizeof(a) / sizeof((a)[0]))

/* ---- data -------------------------------------------------------------- */

struct given {
    const char *name;  /* as written */
    const char *ascii; /* for the e-mail address */
    char sex;          /* 'f' or 'm': picks the family name's form */
    const char *lang;  /* BCP 47 override, or NULL for the locale's */
};

struct family {
    const char *m, *am; /* masculine (or only) form, and its ASCII */
    const char *f, *af; /* feminine form where the language has one, else NULL */
};

struct place {
    const char *locality;
    const char *region;
    const char *postal; /* '#' a digit, '@' an upper-case letter */
    const char *phone;  /* '#' a digit of the subscriber number (at least 6) */
};

enum street_style {
    ST_NAME_NUM,       /* Hauptstraße 12 */
    ST_NUM_NAME,       /* 12 rue de la Paix */
    ST_NAME_COMMA_NUM, /* Rua das Flores, 123 */
    ST_CO,             /* Carrera 7 # 32-16 */
    ST_RU,             /* ул. Ленина, д. 5 */
    ST_CN,             /* 建国路88号 */
    ST_NUM_COMMA_NAME, /* 12, नेहरू रोड */
    ST_ID,             /* Jl. Merdeka No. 12 */
};

struct locale {
    const char *country;  /* ISO 3166-1 alpha-2 */
    const char *language; /* BCP 47 */
    const char *joiner;   /* between two given names */
    const struct given *given;
    size_t ngiven;
    const struct family *family;
    size_t nfamily;
    int two_surnames; /* family name is two distinct surnames (Colombia) */
    const struct place *places;
    size_t nplaces;
    const char *const *streets;
    size_t nstreets;
    enum street_style style;
    unsigned house_max;
    const char *const *jobs;
    size_t njobs;
};

#define G(n, a, s)                                                                                 \
    {                                                                                              \
        n, a, s, NULL                                                                              \
    }
#define FAM(m, am)                                                                                 \
    {                                                                                              \
        m, am, NULL, NULL                                                                          \
    }
#define FAM2(m, am, f, af)                                                                         \
    {                                                                                              \
        m, am, f, af                                                                               \
    }

/* Germany */
static const struct given de_given[] = {
    G("Anna", "anna", 'f'),
    G("Lena", "lena", 'f'),
    G("Sophie", "sophie", 'f'),
    G("Marie", "marie", 'f'),
    G("Jutta", "jutta", 'f'),
    G("Ursula", "ursula", 'f'),
    G("Käthe", "kaethe", 'f'),
    G("Jana", "jana", 'f'),
    G("Franziska", "franziska", 'f'),
    G("Hannah", "hannah", 'f'),
    G("Charlotte", "charlotte", 'f'),
    G("Grete", "grete", 'f'),
    G("Lukas", "lukas", 'm'),
    G("Jürgen", "juergen", 'm'),
    G("Matthias", "matthias", 'm'),
    G("Sebastian", "sebastian", 'm'),
    G("Björn", "bjoern", 'm'),
    G("Jörg", "joerg", 'm'),
    G("Stefan", "stefan", 'm'),
    G("Florian", "florian", 'm'),
    G("Maximilian", "maximilian", 'm'),
    G("Uwe", "uwe", 'm'),
    G("Günter", "guenter", 'm'),
    G("Tobias", "tobias", 'm'),
};
static const struct family de_family[] = {
    FAM("Müller", "mueller"),      FAM("Schmidt", "schmidt"),
    FAM("Schneider", "schneider"), FAM("Fischer", "fischer"),
    FAM("Weiß", "weiss"),          FAM("Meyer", "meyer"),
    FAM("Wagner", "wagner"),       FAM("Becker", "becker"),
    FAM("Schulz", "schulz"),       FAM("Hoffmann", "hoffmann"),
    FAM("Schäfer", "schaefer"),    FAM("Koch", "koch"),
    FAM("Bauer", "bauer"),         FAM("Richter", "richter"),
    FAM("Klein", "klein"),         FAM("Wolf", "wolf"),
    FAM("Schröder", "schroeder"),  FAM("Neumann", "neumann"),
    FAM("Schwarz", "schwarz"),     FAM("Zimmermann", "zimmermann"),
    FAM("Braun", "braun"),         FAM("Krüger", "krueger"),
    FAM("Köhler", "koehler"),      FAM("Groß", "gross"),
};
static const struct place de_places[] = {
    {"Berlin", "Berlin", "10###", "+49 30 #######"},
    {"München", "Bayern", "80###", "+49 89 #######"},
    {"Köln", "Nordrhein-Westfalen", "50###", "+49 221 #######"},
    {"Hamburg", "Hamburg", "20###", "+49 40 #######"},
    {"Düsseldorf", "Nordrhein-Westfalen", "40###", "+49 211 #######"},
    {"Nürnberg", "Bayern", "90###", "+49 911 #######"},
    {"Leipzig", "Sachsen", "04###", "+49 341 #######"},
    {"Dresden", "Sachsen", "01###", "+49 351 #######"},
    {"Stuttgart", "Baden-Württemberg", "70###", "+49 711 #######"},
    {"Görlitz", "Sachsen", "0282#", "+49 3581 ######"},
    {"Würzburg", "Bayern", "970##", "+49 931 #######"},
    {"Mülheim an der Ruhr", "Nordrhein-Westfalen", "454##", "+49 208 #######"},
};
static const char *const de_streets[] = {
    "Hauptstraße",  "Bahnhofstraße", "Schloßallee",     "Goethestraße",
    "Lindenstraße", "Am Mühlbach",   "Friedrichstraße", "Schillerplatz",
    "Gartenweg",    "Kirchgasse",    "Rosenstraße",     "Königsallee",
};
static const char *const de_jobs[] = {
    "Einkaufsleitung", "Vertrieb Außendienst", "Geschäftsführung",
    "Buchhaltung",     "Leitung Marketing",    "Inhaber",
    "Projektleitung",  "IT-Administration",    "Assistenz der Geschäftsführung",
    "Filialleitung",
};

/* France */
static const struct given fr_given[] = {
    G("Camille", "camille", 'f'),   G("Chloé", "chloe", 'f'),         G("Léa", "lea", 'f'),
    G("Manon", "manon", 'f'),       G("Inès", "ines", 'f'),           G("Océane", "oceane", 'f'),
    G("Hélène", "helene", 'f'),     G("Françoise", "francoise", 'f'), G("Émilie", "emilie", 'f'),
    G("Zoé", "zoe", 'f'),           G("Margaux", "margaux", 'f'),     G("Maëlle", "maelle", 'f'),
    G("Léo", "leo", 'm'),           G("Hugo", "hugo", 'm'),           G("Théo", "theo", 'm'),
    G("Mathis", "mathis", 'm'),     G("Noël", "noel", 'm'),           G("Jérôme", "jerome", 'm'),
    G("François", "francois", 'm'), G("Benoît", "benoit", 'm'),       G("Gaël", "gael", 'm'),
    G("Loïc", "loic", 'm'),         G("Étienne", "etienne", 'm'),     G("Raphaël", "raphael", 'm'),
};
static const struct family fr_family[] = {
    FAM("Martin", "martin"),     FAM("Bernard", "bernard"),     FAM("Dubois", "dubois"),
    FAM("Thomas", "thomas"),     FAM("Robert", "robert"),       FAM("Richard", "richard"),
    FAM("Petit", "petit"),       FAM("Durand", "durand"),       FAM("Leroy", "leroy"),
    FAM("Moreau", "moreau"),     FAM("Lefèvre", "lefevre"),     FAM("Garnier", "garnier"),
    FAM("Faure", "faure"),       FAM("Girard", "girard"),       FAM("Bonnet", "bonnet"),
    FAM("Dupont", "dupont"),     FAM("Lambert", "lambert"),     FAM("Fontaine", "fontaine"),
    FAM("Rousseau", "rousseau"), FAM("Chevalier", "chevalier"), FAM("Guérin", "guerin"),
    FAM("Mercier", "mercier"),   FAM("Boyer", "boyer"),         FAM("Gauthier", "gauthier"),
};
static const struct place fr_places[] = {
    {"Paris", "Île-de-France", "750##", "+33 1 ## ## ## ##"},
    {"Lyon", "Auvergne-Rhône-Alpes", "6900#", "+33 4 ## ## ## ##"},
    {"Marseille", "Provence-Alpes-Côte d'Azur", "130##", "+33 4 ## ## ## ##"},
    {"Toulouse", "Occitanie", "310##", "+33 5 ## ## ## ##"},
    {"Nice", "Provence-Alpes-Côte d'Azur", "060##", "+33 6 ## ## ## ##"},
    {"Nantes", "Pays de la Loire", "440##", "+33 2 ## ## ## ##"},
    {"Strasbourg", "Grand Est", "670##", "+33 3 ## ## ## ##"},
    {"Montpellier", "Occitanie", "340##", "+33 4 ## ## ## ##"},
    {"Bordeaux", "Nouvelle-Aquitaine", "330##", "+33 5 ## ## ## ##"},
    {"Lille", "Hauts-de-France", "590##", "+33 3 ## ## ## ##"},
    {"Orléans", "Centre-Val de Loire", "450##", "+33 2 ## ## ## ##"},
    {"Besançon", "Bourgogne-Franche-Comté", "250##", "+33 7 ## ## ## ##"},
};
static const char *const fr_streets[] = {
    "rue de la Paix",
    "rue du Faubourg Saint-Honoré",
    "avenue des Champs-Élysées",
    "boulevard Haussmann",
    "place de l'Église",
    "rue Émile Zola",
    "chemin des Écoliers",
    "allée des Châtaigniers",
    "quai de la Tournelle",
    "rue Pasteur",
    "impasse des Mûriers",
    "cours Mirabeau",
};
static const char *const fr_jobs[] = {
    "Directrice commerciale", "Chef de projet",
    "Responsable des achats", "Comptable",
    "Chargée d'affaires",     "Gérant",
    "Ingénieur qualité",      "Assistante de direction",
    "Responsable marketing",  "Technicien de maintenance",
};

/* Poland */
static const struct given pl_given[] = {
    G("Anna", "anna", 'f'),           G("Małgorzata", "malgorzata", 'f'),
    G("Agnieszka", "agnieszka", 'f'), G("Katarzyna", "katarzyna", 'f'),
    G("Żaneta", "zaneta", 'f'),       G("Magdalena", "magdalena", 'f'),
    G("Joanna", "joanna", 'f'),       G("Łucja", "lucja", 'f'),
    G("Grażyna", "grazyna", 'f'),     G("Zofia", "zofia", 'f'),
    G("Bożena", "bozena", 'f'),       G("Jadwiga", "jadwiga", 'f'),
    G("Piotr", "piotr", 'm'),         G("Łukasz", "lukasz", 'm'),
    G("Krzysztof", "krzysztof", 'm'), G("Tomasz", "tomasz", 'm'),
    G("Paweł", "pawel", 'm'),         G("Michał", "michal", 'm'),
    G("Wojciech", "wojciech", 'm'),   G("Jakub", "jakub", 'm'),
    G("Grzegorz", "grzegorz", 'm'),   G("Mateusz", "mateusz", 'm'),
    G("Zbigniew", "zbigniew", 'm'),   G("Jarosław", "jaroslaw", 'm'),
};
static const struct family pl_family[] = {
    FAM2("Kowalski", "kowalski", "Kowalska", "kowalska"),
    FAM("Nowak", "nowak"),
    FAM2("Wiśniewski", "wisniewski", "Wiśniewska", "wisniewska"),
    FAM("Wójcik", "wojcik"),
    FAM("Kowalczyk", "kowalczyk"),
    FAM2("Kamiński", "kaminski", "Kamińska", "kaminska"),
    FAM2("Lewandowski", "lewandowski", "Lewandowska", "lewandowska"),
    FAM2("Zieliński", "zielinski", "Zielińska", "zielinska"),
    FAM2("Szymański", "szymanski", "Szymańska", "szymanska"),
    FAM("Woźniak", "wozniak"),
    FAM2("Dąbrowski", "dabrowski", "Dąbrowska", "dabrowska"),
    FAM2("Kozłowski", "kozlowski", "Kozłowska", "kozlowska"),
    FAM2("Jankowski", "jankowski", "Jankowska", "jankowska"),
    FAM("Mazur", "mazur"),
    FAM2("Kwiatkowski", "kwiatkowski", "Kwiatkowska", "kwiatkowska"),
    FAM("Krawczyk", "krawczyk"),
    FAM2("Piotrowski", "piotrowski", "Piotrowska", "piotrowska"),
    FAM2("Grabowski", "grabowski", "Grabowska", "grabowska"),
    FAM2("Nowakowski", "nowakowski", "Nowakowska", "nowakowska"),
    FAM2("Pawłowski", "pawlowski", "Pawłowska", "pawlowska"),
    FAM2("Michalski", "michalski", "Michalska", "michalska"),
    FAM("Wróbel", "wrobel"),
    FAM2("Jabłoński", "jablonski", "Jabłońska", "jablonska"),
    FAM("Król", "krol"),
};
static const struct place pl_places[] = {
    {"Łódź", "łódzkie", "9#-###", "+48 42 ### ## ##"},
    {"Warszawa", "mazowieckie", "0#-###", "+48 22 ### ## ##"},
    {"Kraków", "małopolskie", "3#-###", "+48 12 ### ## ##"},
    {"Wrocław", "dolnośląskie", "5#-###", "+48 71 ### ## ##"},
    {"Poznań", "wielkopolskie", "6#-###", "+48 61 ### ## ##"},
    {"Gdańsk", "pomorskie", "80-###", "+48 58 ### ## ##"},
    {"Szczecin", "zachodniopomorskie", "70-###", "+48 91 ### ## ##"},
    {"Lublin", "lubelskie", "20-###", "+48 81 ### ## ##"},
    {"Białystok", "podlaskie", "15-###", "+48 85 ### ## ##"},
    {"Katowice", "śląskie", "40-###", "+48 32 ### ## ##"},
    {"Częstochowa", "śląskie", "42-2##", "+48 34 ### ## ##"},
    {"Rzeszów", "podkarpackie", "35-###", "+48 17 ### ## ##"},
};
static const char *const pl_streets[] = {
    "ul. Piotrkowska", "ul. Marszałkowska", "ul. Świętokrzyska", "ul. Żeromskiego",
    "ul. Łąkowa",      "al. Kościuszki",    "ul. Mickiewicza",   "ul. Słowackiego",
    "ul. Wólczańska",  "ul. Źródłowa",      "pl. Wolności",      "ul. Gdańska",
};
static const char *const pl_jobs[] = {
    "Kierownik sprzedaży",
    "Księgowa",
    "Specjalista ds. zakupów",
    "Dyrektor handlowy",
    "Właściciel",
    "Kierowniczka biura",
    "Inżynier produkcji",
    "Przedstawiciel handlowy",
    "Asystentka zarządu",
    "Główny technolog",
};

/* Brazil */
static const struct given br_given[] = {
    G("Maria", "maria", 'f'),         G("Ana", "ana", 'f'),
    G("Francisca", "francisca", 'f'), G("Antônia", "antonia", 'f'),
    G("Adriana", "adriana", 'f'),     G("Juliana", "juliana", 'f'),
    G("Márcia", "marcia", 'f'),       G("Fernanda", "fernanda", 'f'),
    G("Patrícia", "patricia", 'f'),   G("Aline", "aline", 'f'),
    G("Luíza", "luiza", 'f'),         G("Conceição", "conceicao", 'f'),
    G("João", "joao", 'm'),           G("José", "jose", 'm'),
    G("Antônio", "antonio", 'm'),     G("Francisco", "francisco", 'm'),
    G("Carlos", "carlos", 'm'),       G("Paulo", "paulo", 'm'),
    G("Pedro", "pedro", 'm'),         G("Lucas", "lucas", 'm'),
    G("Luiz", "luiz", 'm'),           G("Marcos", "marcos", 'm'),
    G("Thiago", "thiago", 'm'),       G("Sebastião", "sebastiao", 'm'),
};
static const struct family br_family[] = {
    FAM("Silva", "silva"),       FAM("Santos", "santos"),         FAM("Oliveira", "oliveira"),
    FAM("Souza", "souza"),       FAM("Rodrigues", "rodrigues"),   FAM("Ferreira", "ferreira"),
    FAM("Alves", "alves"),       FAM("Pereira", "pereira"),       FAM("Lima", "lima"),
    FAM("Gomes", "gomes"),       FAM("Ribeiro", "ribeiro"),       FAM("Carvalho", "carvalho"),
    FAM("Araújo", "araujo"),     FAM("Almeida", "almeida"),       FAM("Barbosa", "barbosa"),
    FAM("Cardoso", "cardoso"),   FAM("Gonçalves", "goncalves"),   FAM("Magalhães", "magalhaes"),
    FAM("Assunção", "assuncao"), FAM("Nascimento", "nascimento"), FAM("Brandão", "brandao"),
    FAM("Falcão", "falcao"),     FAM("Teixeira", "teixeira"),     FAM("Moreira", "moreira"),
};
static const struct place br_places[] = {
    {"São Paulo", "SP", "0####-###", "+55 11 9####-####"},
    {"Rio de Janeiro", "RJ", "2####-###", "+55 21 9####-####"},
    {"Belo Horizonte", "MG", "3####-###", "+55 31 9####-####"},
    {"Salvador", "BA", "4####-###", "+55 71 9####-####"},
    {"Brasília", "DF", "7####-###", "+55 61 9####-####"},
    {"Fortaleza", "CE", "60###-###", "+55 85 9####-####"},
    {"Curitiba", "PR", "8####-###", "+55 41 9####-####"},
    {"Manaus", "AM", "69###-###", "+55 92 9####-####"},
    {"Recife", "PE", "5####-###", "+55 81 9####-####"},
    {"Porto Alegre", "RS", "9####-###", "+55 51 9####-####"},
    {"Belém", "PA", "66###-###", "+55 91 9####-####"},
    {"Florianópolis", "SC", "88###-###", "+55 48 9####-####"},
};
static const char *const br_streets[] = {
    "Rua das Flores",
    "Avenida Paulista",
    "Rua Augusta",
    "Rua São João",
    "Avenida Brigadeiro Faria Lima",
    "Rua da Consolação",
    "Travessa do Ouvidor",
    "Praça da Sé",
    "Alameda Santos",
    "Rua Visconde de Pirajá",
    "Avenida Atlântica",
    "Rua Conselheiro Lafaiete",
};
static const char *const br_jobs[] = {
    "Gerente comercial",
    "Analista financeiro",
    "Diretora de vendas",
    "Coordenador de compras",
    "Proprietária",
    "Engenheiro de produção",
    "Assistente administrativo",
    "Representante comercial",
    "Contadora",
    "Supervisor de logística",
};

/* Argentina */
static const struct given ar_given[] = {
    G("Sofía", "sofia", 'f'),       G("Valentina", "valentina", 'f'),
    G("Martina", "martina", 'f'),   G("Camila", "camila", 'f'),
    G("Lucía", "lucia", 'f'),       G("Florencia", "florencia", 'f'),
    G("Agustina", "agustina", 'f'), G("Milagros", "milagros", 'f'),
    G("Belén", "belen", 'f'),       G("Ximena", "ximena", 'f'),
    G("Romina", "romina", 'f'),     G("Rocío", "rocio", 'f'),
    G("Santiago", "santiago", 'm'), G("Mateo", "mateo", 'm'),
    G("Joaquín", "joaquin", 'm'),   G("Tomás", "tomas", 'm'),
    G("Nicolás", "nicolas", 'm'),   G("Facundo", "facundo", 'm'),
    G("Agustín", "agustin", 'm'),   G("Martín", "martin", 'm'),
    G("Ezequiel", "ezequiel", 'm'), G("Gonzalo", "gonzalo", 'm'),
    G("Matías", "matias", 'm'),     G("Ramón", "ramon", 'm'),
};
static const struct family ar_family[] = {
    FAM("González", "gonzalez"),   FAM("Rodríguez", "rodriguez"), FAM("Gómez", "gomez"),
    FAM("Fernández", "fernandez"), FAM("López", "lopez"),         FAM("Díaz", "diaz"),
    FAM("Martínez", "martinez"),   FAM("Pérez", "perez"),         FAM("Romero", "romero"),
    FAM("Sánchez", "sanchez"),     FAM("García", "garcia"),       FAM("Sosa", "sosa"),
    FAM("Álvarez", "alvarez"),     FAM("Torres", "torres"),       FAM("Ruiz", "ruiz"),
    FAM("Ramírez", "ramirez"),     FAM("Flores", "flores"),       FAM("Benítez", "benitez"),
    FAM("Acosta", "acosta"),       FAM("Medina", "medina"),       FAM("Herrera", "herrera"),
    FAM("Suárez", "suarez"),       FAM("Aguirre", "aguirre"),     FAM("Giménez", "gimenez"),
};
static const struct place ar_places[] = {
    {"Buenos Aires", "Ciudad Autónoma de Buenos Aires", "C1###@@@", "+54 9 11 ####-####"},
    {"Córdoba", "Córdoba", "X50##@@@", "+54 9 351 ###-####"},
    {"Rosario", "Santa Fe", "S20##@@@", "+54 9 341 ###-####"},
    {"Mendoza", "Mendoza", "M55##@@@", "+54 9 261 ###-####"},
    {"La Plata", "Buenos Aires", "B19##@@@", "+54 9 221 ###-####"},
    {"San Miguel de Tucumán", "Tucumán", "T40##@@@", "+54 9 381 ###-####"},
    {"Mar del Plata", "Buenos Aires", "B76##@@@", "+54 9 223 ###-####"},
    {"Salta", "Salta", "A44##@@@", "+54 9 387 ###-####"},
    {"Santa Fe", "Santa Fe", "S30##@@@", "+54 9 342 ###-####"},
    {"Neuquén", "Neuquén", "Q83##@@@", "+54 9 299 ###-####"},
    {"San Carlos de Bariloche", "Río Negro", "R84##@@@", "+54 9 294 ###-####"},
    {"Ushuaia", "Tierra del Fuego", "V94##@@@", "+54 9 2901 ##-####"},
};
static const char *const ar_streets[] = {
    "Av. Corrientes", "Av. de Mayo", "Florida", "Av. Santa Fe", "Defensa", "Balcarce",
    "Av. Rivadavia",  "Güemes",      "Tucumán", "Av. Córdoba",  "Perú",    "Juncal",
};
static const char *const ar_jobs[] = {
    "Gerente de ventas",
    "Contadora",
    "Jefe de compras",
    "Analista de sistemas",
    "Dueño",
    "Directora de marketing",
    "Ingeniero agrónomo",
    "Encargada de sucursal",
    "Vendedor",
    "Asesor comercial",
};

/* Colombia: two surnames, father's then mother's */
static const struct given co_given[] = {
    G("Mariana", "mariana", 'f'),      G("Daniela", "daniela", 'f'),
    G("Valeria", "valeria", 'f'),      G("Natalia", "natalia", 'f'),
    G("Luisa Fernanda", "luisa", 'f'), G("Paola", "paola", 'f'),
    G("Andrea", "andrea", 'f'),        G("Catalina", "catalina", 'f'),
    G("Yolanda", "yolanda", 'f'),      G("Gloria", "gloria", 'f'),
    G("Ángela", "angela", 'f'),        G("Juliana", "juliana", 'f'),
    G("Andrés", "andres", 'm'),        G("Juan Pablo", "juanpablo", 'm'),
    G("Sebastián", "sebastian", 'm'),  G("Alejandro", "alejandro", 'm'),
    G("Camilo", "camilo", 'm'),        G("Julián", "julian", 'm'),
    G("Felipe", "felipe", 'm'),        G("Esteban", "esteban", 'm'),
    G("Óscar", "oscar", 'm'),          G("Jhon Jairo", "jhon", 'm'),
    G("Hernán", "hernan", 'm'),        G("Fabio", "fabio", 'm'),
};
static const struct family co_family[] = {
    FAM("Rodríguez", "rodriguez"), FAM("Gómez", "gomez"),       FAM("González", "gonzalez"),
    FAM("Martínez", "martinez"),   FAM("García", "garcia"),     FAM("López", "lopez"),
    FAM("Hernández", "hernandez"), FAM("Sánchez", "sanchez"),   FAM("Ramírez", "ramirez"),
    FAM("Pérez", "perez"),         FAM("Díaz", "diaz"),         FAM("Muñoz", "munoz"),
    FAM("Rojas", "rojas"),         FAM("Moreno", "moreno"),     FAM("Jiménez", "jimenez"),
    FAM("Vargas", "vargas"),       FAM("Castro", "castro"),     FAM("Ortiz", "ortiz"),
    FAM("Gutiérrez", "gutierrez"), FAM("Restrepo", "restrepo"), FAM("Ospina", "ospina"),
    FAM("Zuluaga", "zuluaga"),     FAM("Londoño", "londono"),   FAM("Cárdenas", "cardenas"),
};
static const struct place co_places[] = {
    {"Bogotá", "Bogotá D.C.", "11####", "+57 601 ### ####"},
    {"Medellín", "Antioquia", "050###", "+57 604 ### ####"},
    {"Cali", "Valle del Cauca", "760###", "+57 602 ### ####"},
    {"Barranquilla", "Atlántico", "080###", "+57 605 ### ####"},
    {"Cartagena de Indias", "Bolívar", "130###", "+57 605 ### ####"},
    {"Bucaramanga", "Santander", "680###", "+57 607 ### ####"},
    {"Pereira", "Risaralda", "660###", "+57 606 ### ####"},
    {"Manizales", "Caldas", "170###", "+57 606 ### ####"},
    {"Santa Marta", "Magdalena", "470###", "+57 605 ### ####"},
    {"Cúcuta", "Norte de Santander", "540###", "+57 607 ### ####"},
    {"Ibagué", "Tolima", "730###", "+57 608 ### ####"},
    {"Pasto", "Nariño", "520###", "+57 31# ### ####"},
};
static const char *const co_streets[] = {
    "Calle 45",       "Carrera 7",    "Avenida Calle 26", "Diagonal 40A",
    "Transversal 23", "Calle 10 Sur", "Carrera 43A",      "Avenida Carrera 68",
    "Calle 72",       "Carrera 15",   "Calle 100",        "Avenida Boyacá",
};
static const char *const co_jobs[] = {
    "Gerente general",     "Asesora comercial",       "Coordinador de logística",
    "Contador público",    "Jefe de talento humano",  "Ingeniera de sistemas",
    "Director financiero", "Auxiliar administrativa", "Representante de ventas",
    "Propietario",
};

/* Russia */
static const struct given ru_given[] = {
    G("Анна", "anna", 'f'),           G("Мария", "maria", 'f'),
    G("Елена", "elena", 'f'),         G("Ольга", "olga", 'f'),
    G("Наталья", "natalya", 'f'),     G("Татьяна", "tatyana", 'f'),
    G("Ирина", "irina", 'f'),         G("Светлана", "svetlana", 'f'),
    G("Юлия", "yuliya", 'f'),         G("Екатерина", "ekaterina", 'f'),
    G("Ксения", "kseniya", 'f'),      G("Дарья", "darya", 'f'),
    G("Александр", "aleksandr", 'm'), G("Дмитрий", "dmitry", 'm'),
    G("Сергей", "sergey", 'm'),       G("Андрей", "andrey", 'm'),
    G("Алексей", "aleksey", 'm'),     G("Иван", "ivan", 'm'),
    G("Михаил", "mikhail", 'm'),      G("Николай", "nikolay", 'm'),
    G("Владимир", "vladimir", 'm'),   G("Павел", "pavel", 'm'),
    G("Юрий", "yury", 'm'),           G("Григорий", "grigory", 'm'),
};
static const struct family ru_family[] = {
    FAM2("Иванов", "ivanov", "Иванова", "ivanova"),
    FAM2("Смирнов", "smirnov", "Смирнова", "smirnova"),
    FAM2("Кузнецов", "kuznetsov", "Кузнецова", "kuznetsova"),
    FAM2("Попов", "popov", "Попова", "popova"),
    FAM2("Васильев", "vasilyev", "Васильева", "vasilyeva"),
    FAM2("Петров", "petrov", "Петрова", "petrova"),
    FAM2("Соколов", "sokolov", "Соколова", "sokolova"),
    FAM2("Михайлов", "mikhaylov", "Михайлова", "mikhaylova"),
    FAM2("Новиков", "novikov", "Новикова", "novikova"),
    FAM2("Фёдоров", "fyodorov", "Фёдорова", "fyodorova"),
    FAM2("Морозов", "morozov", "Морозова", "morozova"),
    FAM2("Волков", "volkov", "Волкова", "volkova"),
    FAM2("Алексеев", "alekseyev", "Алексеева", "alekseyeva"),
    FAM2("Лебедев", "lebedev", "Лебедева", "lebedeva"),
    FAM2("Семёнов", "semyonov", "Семёнова", "semyonova"),
    FAM2("Егоров", "yegorov", "Егорова", "yegorova"),
    FAM2("Павлов", "pavlov", "Павлова", "pavlova"),
    FAM2("Козлов", "kozlov", "Козлова", "kozlova"),
    FAM2("Степанов", "stepanov", "Степанова", "stepanova"),
    FAM2("Николаев", "nikolayev", "Николаева", "nikolayeva"),
    FAM2("Орлов", "orlov", "Орлова", "orlova"),
    FAM2("Макаров", "makarov", "Макарова", "makarova"),
    FAM2("Жуков", "zhukov", "Жукова", "zhukova"),
    FAM2("Щербаков", "shcherbakov", "Щербакова", "shcherbakova"),
};
static const struct place ru_places[] = {
    {"Москва", "Москва", "12####", "+7 495 ###-##-##"},
    {"Санкт-Петербург", "Санкт-Петербург", "19####", "+7 812 ###-##-##"},
    {"Новосибирск", "Новосибирская область", "630###", "+7 383 ###-##-##"},
    {"Екатеринбург", "Свердловская область", "620###", "+7 343 ###-##-##"},
    {"Казань", "Республика Татарстан", "420###", "+7 843 ###-##-##"},
    {"Нижний Новгород", "Нижегородская область", "603###", "+7 831 ###-##-##"},
    {"Челябинск", "Челябинская область", "454###", "+7 351 ###-##-##"},
    {"Самара", "Самарская область", "443###", "+7 846 ###-##-##"},
    {"Ростов-на-Дону", "Ростовская область", "344###", "+7 863 ###-##-##"},
    {"Уфа", "Республика Башкортостан", "450###", "+7 347 ###-##-##"},
    {"Красноярск", "Красноярский край", "660###", "+7 391 ###-##-##"},
    {"Владивосток", "Приморский край", "690###", "+7 9## ###-##-##"},
};
static const char *const ru_streets[] = {
    "ул. Ленина",          "ул. Тверская",  "пр. Мира",    "ул. Арбат",    "Невский пр.",
    "ул. Садовая",         "наб. Фонтанки", "ул. Пушкина", "ул. Гагарина", "Ленинский пр.",
    "ул. Большая Ордынка", "ул. Щорса",
};
static const char *const ru_jobs[] = {
    "Генеральный директор",    "Главный бухгалтер",           "Менеджер по продажам",
    "Инженер-технолог",        "Руководитель отдела закупок", "Юрист",
    "Начальник склада",        "Специалист по маркетингу",    "Индивидуальный предприниматель",
    "Системный администратор",
};

/* China: the family name comes first when spoken; the fields keep it apart */
static const struct given cn_given[] = {
    G("芳", "fang", 'f'), G("娜", "na", 'f'),        G("秀英", "xiuying", 'f'),
    G("敏", "min", 'f'),  G("静", "jing", 'f'),      G("丽", "li", 'f'),
    G("艳", "yan", 'f'),  G("娟", "juan", 'f'),      G("霞", "xia", 'f'),
    G("婷", "ting", 'f'), G("雪梅", "xuemei", 'f'),  G("慧", "hui", 'f'),
    G("伟", "wei", 'm'),  G("强", "qiang", 'm'),     G("磊", "lei", 'm'),
    G("军", "jun", 'm'),  G("洋", "yang", 'm'),      G("勇", "yong", 'm'),
    G("杰", "jie", 'm'),  G("涛", "tao", 'm'),       G("明", "ming", 'm'),
    G("超", "chao", 'm'), G("建国", "jianguo", 'm'), G("志强", "zhiqiang", 'm'),
};
static const struct family cn_family[] = {
    FAM("王", "wang"),  FAM("李", "li"),    FAM("张", "zhang"), FAM("刘", "liu"),
    FAM("陈", "chen"),  FAM("杨", "yang"),  FAM("黄", "huang"), FAM("赵", "zhao"),
    FAM("吴", "wu"),    FAM("周", "zhou"),  FAM("徐", "xu"),    FAM("孙", "sun"),
    FAM("马", "ma"),    FAM("朱", "zhu"),   FAM("胡", "hu"),    FAM("郭", "guo"),
    FAM("何", "he"),    FAM("高", "gao"),   FAM("林", "lin"),   FAM("罗", "luo"),
    FAM("郑", "zheng"), FAM("梁", "liang"), FAM("谢", "xie"),   FAM("宋", "song"),
};
static const struct place cn_places[] = {
    {"北京", "北京市", "100###", "+86 10 #### ####"},
    {"上海", "上海市", "200###", "+86 21 #### ####"},
    {"广州", "广东省", "510###", "+86 20 #### ####"},
    {"深圳", "广东省", "518###", "+86 755 #### ####"},
    {"成都", "四川省", "610###", "+86 28 #### ####"},
    {"杭州", "浙江省", "310###", "+86 571 #### ####"},
    {"武汉", "湖北省", "430###", "+86 27 #### ####"},
    {"西安", "陕西省", "710###", "+86 29 #### ####"},
    {"南京", "江苏省", "210###", "+86 25 #### ####"},
    {"重庆", "重庆市", "400###", "+86 23 #### ####"},
    {"天津", "天津市", "300###", "+86 22 #### ####"},
    {"苏州", "江苏省", "215###", "+86 138 #### ####"},
};
static const char *const cn_streets[] = {
    "建国路",   "中山路", "人民路", "解放路", "长安街",   "南京东路",
    "淮海中路", "和平路", "东风路", "朝阳路", "延安西路", "文化路",
};
static const char *const cn_jobs[] = {
    "总经理",   "销售经理", "会计",     "采购主管", "工程师",
    "人事专员", "市场总监", "行政助理", "店长",     "技术员",
};

/* India (Hindi, Devanagari) */
static const struct given in_given[] = {
    G("प्रिया", "priya", 'f'),    G("अंजलि", "anjali", 'f'),  G("सुनीता", "sunita", 'f'),
    G("पूजा", "pooja", 'f'),      G("नेहा", "neha", 'f'),     G("कविता", "kavita", 'f'),
    G("दीपिका", "deepika", 'f'), G("सीमा", "seema", 'f'),   G("लक्ष्मी", "lakshmi", 'f'),
    G("आरती", "aarti", 'f'),     G("मीरा", "meera", 'f'),   G("रेखा", "rekha", 'f'),
    G("राहुल", "rahul", 'm'),     G("अमित", "amit", 'm'),    G("विकास", "vikas", 'm'),
    G("संजय", "sanjay", 'm'),     G("अर्जुन", "arjun", 'm'),   G("रवि", "ravi", 'm'),
    G("मनोज", "manoj", 'm'),     G("आदित्य", "aditya", 'm'), G("सुरेश", "suresh", 'm'),
    G("राजेश", "rajesh", 'm'),    G("विजय", "vijay", 'm'),   G("अनिल", "anil", 'm'),
};
static const struct family in_family[] = {
    FAM("शर्मा", "sharma"),      FAM("वर्मा", "verma"),       FAM("गुप्ता", "gupta"),
    FAM("सिंह", "singh"),        FAM("पटेल", "patel"),        FAM("यादव", "yadav"),
    FAM("जोशी", "joshi"),       FAM("मिश्रा", "mishra"),     FAM("कुमार", "kumar"),
    FAM("अग्रवाल", "agarwal"),   FAM("चौहान", "chauhan"),    FAM("मेहता", "mehta"),
    FAM("त्रिपाठी", "tripathi"), FAM("पांडे", "pande"),        FAM("श्रीवास्तव", "srivastava"),
    FAM("दुबे", "dubey"),         FAM("तिवारी", "tiwari"),    FAM("सक्सेना", "saxena"),
    FAM("भट्ट", "bhatt"),        FAM("नायर", "nair"),        FAM("चौधरी", "chaudhary"),
    FAM("कपूर", "kapoor"),       FAM("मल्होत्रा", "malhotra"), FAM("बंसल", "bansal"),
};
static const struct place in_places[] = {
    {"मुंबई", "महाराष्ट्र", "400###", "+91 22 #### ####"},
    {"दिल्ली", "दिल्ली", "110###", "+91 11 #### ####"},
    {"बेंगलुरु", "कर्नाटक", "560###", "+91 80 #### ####"},
    {"हैदराबाद", "तेलंगाना", "500###", "+91 40 #### ####"},
    {"अहमदाबाद", "गुजरात", "380###", "+91 79 #### ####"},
    {"चेन्नई", "तमिलनाडु", "600###", "+91 44 #### ####"},
    {"कोलकाता", "पश्चिम बंगाल", "700###", "+91 33 #### ####"},
    {"पुणे", "महाराष्ट्र", "411###", "+91 20 #### ####"},
    {"जयपुर", "राजस्थान", "302###", "+91 141 ### ####"},
    {"लखनऊ", "उत्तर प्रदेश", "226###", "+91 522 ### ####"},
    {"कानपुर", "उत्तर प्रदेश", "208###", "+91 512 ### ####"},
    {"पटना", "बिहार", "800###", "+91 9#### #####"},
};
static const char *const in_streets[] = {
    "महात्मा गांधी मार्ग", "नेहरू रोड",  "स्टेशन रोड", "शिवाजी मार्ग", "लाजपत नगर", "सुभाष चौक",
    "राजीव चौक",        "पटेल मार्ग", "गांधी नगर", "सिविल लाइंस",  "मॉल रोड",   "कर्मचारी कॉलोनी",
};
static const char *const in_jobs[] = {
    "प्रबंध निदेशक", "बिक्री प्रबंधक", "लेखाकार",        "सॉफ्टवेयर इंजीनियर", "क्रय अधिकारी",
    "दुकान मालिक", "विपणन प्रमुख",  "कार्यालय सहायक", "शाखा प्रबंधक",      "तकनीशियन",
};

/* Indonesia */
static const struct given id_given[] = {
    G("Siti", "siti", 'f'),       G("Dewi", "dewi", 'f'),   G("Sri", "sri", 'f'),
    G("Putri", "putri", 'f'),     G("Ayu", "ayu", 'f'),     G("Rina", "rina", 'f'),
    G("Wulan", "wulan", 'f'),     G("Indah", "indah", 'f'), G("Fitri", "fitri", 'f'),
    G("Nurul", "nurul", 'f'),     G("Ratna", "ratna", 'f'), G("Intan", "intan", 'f'),
    G("Budi", "budi", 'm'),       G("Agus", "agus", 'm'),   G("Joko", "joko", 'm'),
    G("Andi", "andi", 'm'),       G("Rizki", "rizki", 'm'), G("Hendra", "hendra", 'm'),
    G("Bambang", "bambang", 'm'), G("Eko", "eko", 'm'),     G("Dedi", "dedi", 'm'),
    G("Yusuf", "yusuf", 'm'),     G("Wahyu", "wahyu", 'm'), G("Arief", "arief", 'm'),
};
static const struct family id_family[] = {
    FAM("Santoso", "santoso"),   FAM("Wijaya", "wijaya"),   FAM("Saputra", "saputra"),
    FAM("Hidayat", "hidayat"),   FAM("Susanto", "susanto"), FAM("Nugroho", "nugroho"),
    FAM("Kusuma", "kusuma"),     FAM("Pratama", "pratama"), FAM("Setiawan", "setiawan"),
    FAM("Gunawan", "gunawan"),   FAM("Halim", "halim"),     FAM("Siregar", "siregar"),
    FAM("Nasution", "nasution"), FAM("Harahap", "harahap"), FAM("Simanjuntak", "simanjuntak"),
    FAM("Sitompul", "sitompul"), FAM("Lubis", "lubis"),     FAM("Wibowo", "wibowo"),
    FAM("Purnomo", "purnomo"),   FAM("Hartono", "hartono"), FAM("Permana", "permana"),
    FAM("Suryadi", "suryadi"),   FAM("Rahman", "rahman"),   FAM("Hakim", "hakim"),
};
static const struct place id_places[] = {
    {"Jakarta Selatan", "DKI Jakarta", "12###", "+62 21 #### ####"},
    {"Bandung", "Jawa Barat", "40###", "+62 22 #### ####"},
    {"Surabaya", "Jawa Timur", "60###", "+62 31 #### ####"},
    {"Medan", "Sumatera Utara", "20###", "+62 61 #### ####"},
    {"Semarang", "Jawa Tengah", "50###", "+62 24 #### ####"},
    {"Makassar", "Sulawesi Selatan", "90###", "+62 411 ### ####"},
    {"Yogyakarta", "DI Yogyakarta", "55###", "+62 274 ### ####"},
    {"Denpasar", "Bali", "80###", "+62 361 ### ####"},
    {"Palembang", "Sumatera Selatan", "30###", "+62 711 ### ####"},
    {"Balikpapan", "Kalimantan Timur", "76###", "+62 542 ### ####"},
    {"Malang", "Jawa Timur", "65###", "+62 341 ### ####"},
    {"Manado", "Sulawesi Utara", "95###", "+62 812-####-####"},
};
static const char *const id_streets[] = {
    "Jl. Jenderal Sudirman", "Jl. M.H. Thamrin", "Jl. Gatot Subroto", "Jl. Diponegoro",
    "Jl. Asia Afrika",       "Jl. Malioboro",    "Jl. Pemuda",        "Jl. Gajah Mada",
    "Jl. Merdeka",           "Jl. Ahmad Yani",   "Jl. Pahlawan",      "Gg. Mawar",
};
static const char *const id_jobs[] = {
    "Direktur Utama", "Manajer Penjualan", "Staf Akuntansi", "Kepala Gudang",
    "Pemilik Toko",   "Staf Administrasi", "Insinyur Sipil", "Manajer Pemasaran",
    "Sales Lapangan", "Kepala Cabang",
};

/* Kenya (Swahili and the names of Kenya's larger communities) */
static const struct given ke_given[] = {
    G("Wanjiru", "wanjiru", 'f'), G("Achieng", "achieng", 'f'),   G("Njeri", "njeri", 'f'),
    G("Neema", "neema", 'f'),     G("Zawadi", "zawadi", 'f'),     G("Imani", "imani", 'f'),
    G("Rehema", "rehema", 'f'),   G("Chebet", "chebet", 'f'),     G("Wambui", "wambui", 'f'),
    G("Akinyi", "akinyi", 'f'),   G("Nafula", "nafula", 'f'),     G("Halima", "halima", 'f'),
    G("Juma", "juma", 'm'),       G("Baraka", "baraka", 'm'),     G("Otieno", "otieno", 'm'),
    G("Kamau", "kamau", 'm'),     G("Kipchoge", "kipchoge", 'm'), G("Omondi", "omondi", 'm'),
    G("Mwangi", "mwangi", 'm'),   G("Faraji", "faraji", 'm'),     G("Kiprono", "kiprono", 'm'),
    G("Wafula", "wafula", 'm'),   G("Hassan", "hassan", 'm'),     G("Mutua", "mutua", 'm'),
};
static const struct family ke_family[] = {
    FAM("Mwangi", "mwangi"),     FAM("Otieno", "otieno"),       FAM("Odhiambo", "odhiambo"),
    FAM("Wanjiku", "wanjiku"),   FAM("Njoroge", "njoroge"),     FAM("Kariuki", "kariuki"),
    FAM("Ochieng", "ochieng"),   FAM("Wafula", "wafula"),       FAM("Barasa", "barasa"),
    FAM("Omondi", "omondi"),     FAM("Kiprotich", "kiprotich"), FAM("Muthoni", "muthoni"),
    FAM("Kimani", "kimani"),     FAM("Onyango", "onyango"),     FAM("Macharia", "macharia"),
    FAM("Mutai", "mutai"),       FAM("Korir", "korir"),         FAM("Chepkoech", "chepkoech"),
    FAM("Nyambura", "nyambura"), FAM("Wekesa", "wekesa"),       FAM("Mohamed", "mohamed"),
    FAM("Were", "were"),         FAM("Gitau", "gitau"),         FAM("Karanja", "karanja"),
};
static const struct place ke_places[] = {
    {"Nairobi", "Nairobi", "00###", "+254 722 ######"},
    {"Mombasa", "Mombasa", "80###", "+254 733 ######"},
    {"Kisumu", "Kisumu", "40###", "+254 711 ######"},
    {"Nakuru", "Nakuru", "20###", "+254 720 ######"},
    {"Eldoret", "Uasin Gishu", "30###", "+254 721 ######"},
    {"Thika", "Kiambu", "010##", "+254 723 ######"},
    {"Malindi", "Kilifi", "802##", "+254 724 ######"},
    {"Kitale", "Trans-Nzoia", "302##", "+254 725 ######"},
    {"Garissa", "Garissa", "701##", "+254 726 ######"},
    {"Nyeri", "Nyeri", "101##", "+254 727 ######"},
    {"Machakos", "Machakos", "901##", "+254 728 ######"},
    {"Kakamega", "Kakamega", "501##", "+254 729 ######"},
};
static const char *const ke_streets[] = {
    "Moi Avenue",
    "Kenyatta Avenue",
    "Ngong Road",
    "Waiyaki Way",
    "Kimathi Street",
    "Tom Mboya Street",
    "Haile Selassie Avenue",
    "Biashara Street",
    "Oginga Odinga Street",
    "Jomo Kenyatta Highway",
    "Nyerere Road",
    "Mama Ngina Street",
};
static const char *const ke_jobs[] = {
    "Meneja Mkuu", "Mhasibu", "Afisa Mauzo",    "Mkurugenzi",    "Mfanyabiashara",
    "Mhandisi",    "Karani",  "Meneja wa Tawi", "Afisa Ununuzi", "Mwalimu",
};

/* Nigeria: Yoruba (with tone marks, as careful writers spell them), Igbo, Hausa */
static const struct given ng_given[] = {
    {"Fúnmiláyọ̀", "funmilayo", 'f', "yo"},
    {"Folasade", "folasade", 'f', "yo"},
    {"Ṣadé", "sade", 'f', "yo"},
    {"Temitope", "temitope", 'f', "yo"},
    {"Chiamaka", "chiamaka", 'f', "ig"},
    {"Ngozi", "ngozi", 'f', "ig"},
    {"Adaeze", "adaeze", 'f', "ig"},
    {"Chinwe", "chinwe", 'f', "ig"},
    {"Aisha", "aisha", 'f', "ha"},
    {"Zainab", "zainab", 'f', "ha"},
    {"Hadiza", "hadiza", 'f', "ha"},
    {"Fatima", "fatima", 'f', "ha"},
    {"Adébáyọ̀", "adebayo", 'm', "yo"},
    {"Oluwaseun", "oluwaseun", 'm', "yo"},
    {"Babatunde", "babatunde", 'm', "yo"},
    {"Olumide", "olumide", 'm', "yo"},
    {"Chukwuemeka", "chukwuemeka", 'm', "ig"},
    {"Obinna", "obinna", 'm', "ig"},
    {"Ifeanyi", "ifeanyi", 'm', "ig"},
    {"Nnamdi", "nnamdi", 'm', "ig"},
    {"Musa", "musa", 'm', "ha"},
    {"Abubakar", "abubakar", 'm', "ha"},
    {"Ibrahim", "ibrahim", 'm', "ha"},
    {"Usman", "usman", 'm', "ha"},
};
static const struct family ng_family[] = {
    FAM("Adéyẹmí", "adeyemi"),     FAM("Ogunbiyi", "ogunbiyi"), FAM("Balogun", "balogun"),
    FAM("Oyelaran", "oyelaran"),   FAM("Adeleke", "adeleke"),   FAM("Ṣóyínká", "soyinka"),
    FAM("Okafor", "okafor"),       FAM("Eze", "eze"),           FAM("Nwosu", "nwosu"),
    FAM("Okonkwo", "okonkwo"),     FAM("Obi", "obi"),           FAM("Chukwu", "chukwu"),
    FAM("Nwachukwu", "nwachukwu"), FAM("Okeke", "okeke"),       FAM("Bello", "bello"),
    FAM("Danjuma", "danjuma"),     FAM("Yusuf", "yusuf"),       FAM("Sani", "sani"),
    FAM("Garba", "garba"),         FAM("Lawal", "lawal"),       FAM("Aliyu", "aliyu"),
    FAM("Mohammed", "mohammed"),   FAM("Suleiman", "suleiman"), FAM("Dikko", "dikko"),
};
static const struct place ng_places[] = {
    {"Lagos", "Lagos", "100###", "+234 803 ### ####"},
    {"Ibadan", "Oyo", "200###", "+234 805 ### ####"},
    {"Abuja", "Federal Capital Territory", "900###", "+234 806 ### ####"},
    {"Kano", "Kano", "700###", "+234 807 ### ####"},
    {"Port Harcourt", "Rivers", "500###", "+234 808 ### ####"},
    {"Enugu", "Enugu", "400###", "+234 809 ### ####"},
    {"Kaduna", "Kaduna", "800###", "+234 810 ### ####"},
    {"Abeokuta", "Ogun", "110###", "+234 813 ### ####"},
    {"Onitsha", "Anambra", "434###", "+234 816 ### ####"},
    {"Jos", "Plateau", "930###", "+234 703 ### ####"},
    {"Ilorin", "Kwara", "240###", "+234 706 ### ####"},
    {"Sokoto", "Sokoto", "840###", "+234 802 ### ####"},
};
static const char *const ng_streets[] = {
    "Awolowo Road",
    "Adeola Odeku Street",
    "Herbert Macaulay Way",
    "Allen Avenue",
    "Ozumba Mbadiwe Avenue",
    "Ahmadu Bello Way",
    "Broad Street",
    "Ogui Road",
    "Zaria Road",
    "Ibrahim Taiwo Road",
    "Aminu Kano Crescent",
    "Nnamdi Azikiwe Street",
};
static const char *const ng_jobs[] = {
    "Managing Director", "Sales Executive",    "Chief Accountant", "Procurement Officer",
    "Business Owner",    "Operations Manager", "Civil Engineer",   "Admin Officer",
    "Branch Manager",    "Pharmacist",
};

/* United States (California and Texas) */
static const struct given us_given[] = {
    G("Jennifer", "jennifer", 'f'), G("Emily", "emily", 'f'),
    G("Ashley", "ashley", 'f'),     G("Jessica", "jessica", 'f'),
    G("Sarah", "sarah", 'f'),       G("Megan", "megan", 'f'),
    G("Lauren", "lauren", 'f'),     G("Rachel", "rachel", 'f'),
    G("Brittany", "brittany", 'f'), G("Kayla", "kayla", 'f'),
    G("Madison", "madison", 'f'),   G("Heather", "heather", 'f'),
    G("Michael", "michael", 'm'),   G("Christopher", "christopher", 'm'),
    G("Joshua", "joshua", 'm'),     G("Matthew", "matthew", 'm'),
    G("Tyler", "tyler", 'm'),       G("Brandon", "brandon", 'm'),
    G("Ryan", "ryan", 'm'),         G("Kevin", "kevin", 'm'),
    G("Justin", "justin", 'm'),     G("Austin", "austin", 'm'),
    G("Dylan", "dylan", 'm'),       G("Jacob", "jacob", 'm'),
};
static const struct family us_family[] = {
    FAM("Smith", "smith"),   FAM("Johnson", "johnson"),     FAM("Williams", "williams"),
    FAM("Brown", "brown"),   FAM("Jones", "jones"),         FAM("Miller", "miller"),
    FAM("Davis", "davis"),   FAM("Wilson", "wilson"),       FAM("Anderson", "anderson"),
    FAM("Taylor", "taylor"), FAM("Moore", "moore"),         FAM("Jackson", "jackson"),
    FAM("White", "white"),   FAM("Harris", "harris"),       FAM("Thompson", "thompson"),
    FAM("Clark", "clark"),   FAM("Lewis", "lewis"),         FAM("Robinson", "robinson"),
    FAM("Walker", "walker"), FAM("O'Brien", "obrien"),      FAM("McAllister", "mcallister"),
    FAM("Nguyen", "nguyen"), FAM("Hernandez", "hernandez"), FAM("Kim", "kim"),
};
static const struct place us_places[] = {
    {"San Francisco", "CA", "941##", "+1 (415) 5##-####"},
    {"Los Angeles", "CA", "900##", "+1 (213) 4##-####"},
    {"San Diego", "CA", "921##", "+1 (619) 2##-####"},
    {"Sacramento", "CA", "958##", "+1 (916) 3##-####"},
    {"Fresno", "CA", "937##", "+1 (559) 4##-####"},
    {"Oakland", "CA", "946##", "+1 (510) 6##-####"},
    {"Houston", "TX", "770##", "+1 (713) 5##-####"},
    {"Austin", "TX", "787##", "+1 (512) 4##-####"},
    {"Dallas", "TX", "752##", "+1 (214) 7##-####"},
    {"San Antonio", "TX", "782##", "+1 (210) 2##-####"},
    {"El Paso", "TX", "799##", "+1 (915) 5##-####"},
    {"Fort Worth", "TX", "761##", "+1 (817) 3##-####"},
};
/* Two CSV-awkward values on purpose: a comma and quotes inside a field. */
static const char *const us_streets[] = {
    "Main St",
    "Market St",
    "Mission St",
    "Valencia St",
    "Elm Ave",
    "Oak St",
    "O'Farrell St",
    "Sunset Blvd",
    "Lombard St",
    "Congress Ave",
    "Howard St, Bldg \"C\"",
    "Westheimer Rd",
};
static const char *const us_jobs[] = {
    "Account Executive",
    "VP of Sales",
    "Office Manager",
    "Software Engineer",
    "Owner",
    "Procurement Specialist",
    "Chief Financial Officer",
    "Director, Business Development",
    "Head of \"Special Projects\"",
    "Store Manager",
};

#define LOCALE(cc, lang, join, p, two, style, house)                                               \
    {                                                                                              \
        cc, lang, join, p##_given, N_(p##_given), p##_family, N_(p##_family), two, p##_places,     \
            N_(p##_places), p##_streets, N_(p##_streets), style, house, p##_jobs, N_(p##_jobs)     \
    }

static const struct locale locales[] = {
    LOCALE("DE", "de-DE", " ", de, 0, ST_NAME_NUM, 180),
    LOCALE("FR", "fr-FR", " ", fr, 0, ST_NUM_NAME, 150),
    LOCALE("PL", "pl-PL", " ", pl, 0, ST_NAME_NUM, 200),
    LOCALE("BR", "pt-BR", " ", br, 0, ST_NAME_COMMA_NUM, 3000),
    LOCALE("AR", "es-AR", " ", ar, 0, ST_NAME_NUM, 5999),
    LOCALE("CO", "es-CO", " ", co, 1, ST_CO, 99),
    LOCALE("RU", "ru-RU", " ", ru, 0, ST_RU, 120),
    LOCALE("CN", "zh-CN", "", cn, 0, ST_CN, 300),
    LOCALE("IN", "hi-IN", " ", in, 0, ST_NUM_COMMA_NAME, 400),
    LOCALE("ID", "id-ID", " ", id, 0, ST_ID, 250),
    LOCALE("KE", "sw-KE", " ", ke, 0, ST_NUM_NAME, 400),
    LOCALE("NG", "en-NG", " ", ng, 0, ST_NUM_NAME, 120),
    LOCALE("US", "en-US", " ", us, 0, ST_NUM_NAME, 9999),
};
#define NLOCALES N_(locales)

/* ---- randomness ------------------------------------------------------ */

/* splitmix64: tiny, fast, and every seed gives a full-period stream. */
static uint64_t mix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* A stream for one purpose (`tag`) and one index, independent of others. */
static uint64_t stream(uint64_t seed, uint64_t tag, uint64_t index)
{
    uint64_t s = seed ^ (tag * 0xd6e8feb86659fd93u);
    (void)mix(&s);
    s ^= index * 0xa0761d6478bd642fu;
    (void)mix(&s);
    return s;
}

static unsigned below(uint64_t *rng, unsigned n)
{
    return (unsigned)(mix(rng) % n);
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* ---- a locale's combination space ------------------------------------ */

struct space {
    uint64_t nfamily;   /* family name choices (pairs for two_surnames) */
    uint64_t n;         /* given x family x places */
    uint64_t mult, add; /* r -> (mult * r + add) mod n, a bijection */
    unsigned nf, nm;    /* given names per sex */
    uint64_t phone_mult, phone_add;
};

static void space_init(struct space *sp, const struct locale *l, size_t li, uint64_t seed)
{
    sp->nfamily = l->two_surnames ? l->nfamily * (l->nfamily - 1) : l->nfamily;
    sp->n = l->ngiven * sp->nfamily * l->nplaces;
    uint64_t r = stream(seed, 1, li);
    sp->mult = mix(&r) % sp->n;
    if (sp->mult < 2)
        sp->mult = 2;
    while (gcd(sp->mult, sp->n) != 1)
        sp->mult++;
    sp->add = mix(&r) % sp->n;
    sp->nf = sp->nm = 0;
    for (size_t i = 0; i < l->ngiven; i++) {
        if (l->given[i].sex == 'f')
            sp->nf++;
        else
            sp->nm++;
    }
    /* Odd and not a multiple of 5: a bijection modulo any power of ten. */
    sp->phone_mult = (mix(&r) % 100000u) * 10u + 7u;
    sp->phone_add = mix(&r);
}

/* The largest count for which every row is distinct: within a locale, k
 * runs over n combinations times the second given names available. */
static uint64_t capacity(const struct space *sp)
{
    unsigned smaller = sp->nf < sp->nm ? sp->nf : sp->nm;
    return sp->n * smaller;
}

/* ---- output ------------------------------------------------------------ */

struct out {
    FILE *f;
    char row[4096];
    size_t len;
    int overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n >= sizeof o->row) {
        o->overflow = 1;
        return;
    }
    memcpy(o->row + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* One CSV field, quoted (RFC 4180) when it holds a comma, quote or newline. */
static void field(struct out *o, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n")) {
        put(o, "\"", 1);
        for (const char *p = s; *p; p++) {
            if (*p == '"')
                put(o, "\"", 1);
            put(o, p, 1);
        }
        put(o, "\"", 1);
    } else {
        puts_(o, s);
    }
    if (last)
        put(o, "\r\n", 2);
    else
        put(o, ",", 1);
}

/* Fills '#' with random digits and '@' with random capitals. */
static void pattern_random(char *dst, size_t cap, const char *pat, uint64_t *rng)
{
    size_t i = 0;
    for (const char *p = pat; *p && i + 1 < cap; p++) {
        if (*p == '#')
            dst[i++] = (char)('0' + below(rng, 10));
        else if (*p == '@')
            dst[i++] = (char)('A' + below(rng, 26));
        else
            dst[i++] = *p;
    }
    dst[i] = '\0';
}

/* Fills the '#' of a phone pattern with the digits of `num` mod 10^d. */
static void pattern_number(char *dst, size_t cap, const char *pat, uint64_t num)
{
    unsigned d = 0;
    for (const char *p = pat; *p; p++)
        d += *p == '#';
    char digits[24];
    snprintf(digits, sizeof digits, "%020" PRIu64, num);
    const char *dg = digits + 20 - d;
    size_t i = 0;
    for (const char *p = pat; *p && i + 1 < cap; p++)
        dst[i++] = *p == '#' ? *dg++ : *p;
    dst[i] = '\0';
}

static unsigned phone_digits(const char *pat)
{
    unsigned d = 0;
    for (const char *p = pat; *p; p++)
        d += *p == '#';
    return d;
}

static uint64_t pow10u(unsigned d)
{
    uint64_t p = 1;
    while (d--)
        p *= 10;
    return p;
}

/* Lower-case ASCII letters and digits of s, appended to dst. */
static void slug(char *dst, size_t cap, const char *s)
{
    size_t i = strlen(dst);
    for (; *s && i + 1 < cap; s++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            dst[i++] = c;
    }
    dst[i] = '\0';
}

/* The i-th given name of one sex. */
static const struct given *given_of_sex(const struct locale *l, char sex, unsigned i)
{
    for (size_t j = 0; j < l->ngiven; j++)
        if (l->given[j].sex == sex && i-- == 0)
            return &l->given[j];
    return &l->given[0]; /* not reached: callers pass i below the count */
}

static unsigned index_in_sex(const struct locale *l, const struct given *g)
{
    unsigned i = 0;
    for (const struct given *p = l->given; p < g; p++)
        i += p->sex == g->sex;
    return i;
}

static const char *family_form(const struct family *f, char sex, int ascii)
{
    if (sex == 'f' && f->f)
        return ascii ? f->af : f->f;
    return ascii ? f->am : f->m;
}

static int write_row(struct out *o, uint64_t seed, uint64_t row, const struct space *spaces)
{
    /* Each block of NLOCALES rows holds every locale once, in an order
     * shuffled per block; the block number is the row's index within its
     * locale. */
    uint64_t block = row / NLOCALES;
    unsigned pos = (unsigned)(row % NLOCALES);
    unsigned order[NLOCALES];
    uint64_t br = stream(seed, 2, block);
    for (unsigned i = 0; i < NLOCALES; i++)
        order[i] = i;
    for (unsigned i = NLOCALES - 1; i > 0; i--) {
        unsigned j = below(&br, i + 1);
        unsigned t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    size_t li = order[pos];
    const struct locale *l = &locales[li];
    const struct space *sp = &spaces[li];
    uint64_t k = block;

    uint64_t tier = k / sp->n;
    uint64_t r = (sp->mult * (k % sp->n) + sp->add) % sp->n;
    const struct given *g = &l->given[r % l->ngiven];
    r /= l->ngiven;
    uint64_t fi = r % sp->nfamily;
    const struct place *pl = &l->places[r / sp->nfamily];

    uint64_t rng = stream(seed, 3, row);

    char given[256] = "", family[256] = "", email_name[128] = "";
    snprintf(given, sizeof given, "%s", g->name);
    if (tier) {
        /* Past the combination space a second given name keeps rows apart. */
        unsigned n = g->sex == 'f' ? sp->nf : sp->nm;
        const struct given *g2 =
            given_of_sex(l, g->sex, (unsigned)((index_in_sex(l, g) + tier) % n));
        size_t len = strlen(given);
        snprintf(given + len, sizeof given - len, "%s%s", l->joiner, g2->name);
    }
    const struct family *f1;
    if (l->two_surnames) {
        uint64_t a = fi / (l->nfamily - 1), b = fi % (l->nfamily - 1);
        if (b >= a)
            b++;
        f1 = &l->family[a];
        const struct family *f2 = &l->family[b];
        snprintf(family, sizeof family, "%s %s", family_form(f1, g->sex, 0),
                 family_form(f2, g->sex, 0));
    } else {
        f1 = &l->family[fi];
        snprintf(family, sizeof family, "%s", family_form(f1, g->sex, 0));
    }

    /* E-mail: unique through the row number. */
    static const char *const domains[] = {"example.com", "example.net", "example.org"};
    char sg[64] = "", sf[64] = "", email[200];
    slug(sg, sizeof sg, g->ascii);
    slug(sf, sizeof sf, family_form(f1, g->sex, 1));
    switch (below(&rng, 3)) {
    case 0:
        snprintf(email_name, sizeof email_name, "%s.%s", sg, sf);
        break;
    case 1:
        snprintf(email_name, sizeof email_name, "%c%s", sg[0], sf);
        break;
    default:
        snprintf(email_name, sizeof email_name, "%s_%s", sf, sg);
        break;
    }
    unsigned dom = below(&rng, 4);
    if (dom == 3) {
        char cc[3] = {(char)(l->country[0] - 'A' + 'a'), (char)(l->country[1] - 'A' + 'a'), 0};
        snprintf(email, sizeof email, "%s%" PRIu64 "@%s.example.net", email_name, row + 1, cc);
    } else {
        snprintf(email, sizeof email, "%s%" PRIu64 "@%s", email_name, row + 1, domains[dom]);
    }

    /* Phone: the subscriber digits are a bijection of k, so unique. */
    char phone[64];
    uint64_t mod = pow10u(phone_digits(pl->phone));
    uint64_t sub = (sp->phone_mult % mod * (k % mod) + sp->phone_add % mod) % mod;
    pattern_number(phone, sizeof phone, pl->phone, sub);

    char street[256] = "";
    const char *sn = l->streets[below(&rng, (unsigned)l->nstreets)];
    unsigned house = 1 + below(&rng, l->house_max);
    switch (l->style) {
    case ST_NAME_NUM:
        snprintf(street, sizeof street, "%s %u", sn, house);
        break;
    case ST_NUM_NAME:
        snprintf(street, sizeof street, "%u %s", house, sn);
        break;
    case ST_NAME_COMMA_NUM:
        snprintf(street, sizeof street, "%s, %u", sn, house);
        break;
    case ST_CO:
        snprintf(street, sizeof street, "%s # %u-%02u", sn, house, 1 + below(&rng, 99));
        break;
    case ST_RU:
        snprintf(street, sizeof street, "%s, д. %u", sn, house);
        break;
    case ST_CN:
        snprintf(street, sizeof street, "%s%u号", sn, house);
        break;
    case ST_NUM_COMMA_NAME:
        snprintf(street, sizeof street, "%u, %s", house, sn);
        break;
    case ST_ID:
        snprintf(street, sizeof street, "%s No. %u", sn, house);
        break;
    }
    if (below(&rng, 40) == 0)
        street[0] = '\0'; /* some contacts have no street on file */

    char postal[32];
    pattern_random(postal, sizeof postal, pl->postal, &rng);

    const char *job = below(&rng, 7) == 0 ? "" : l->jobs[below(&rng, (unsigned)l->njobs)];

    char birth[24] = "";
    if (below(&rng, 10) != 0) {
        static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        unsigned y = 1950 + below(&rng, 56), m = 1 + below(&rng, 12);
        unsigned leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        unsigned d = 1 + below(&rng, mdays[m - 1] + (m == 2 && leap));
        snprintf(birth, sizeof birth, "%04u-%02u-%02u", y, m, d);
    }

    o->len = 0;
    o->overflow = 0;
    field(o, given, 0);
    field(o, family, 0);
    field(o, email, 0);
    field(o, phone, 0);
    field(o, street, 0);
    field(o, pl->locality, 0);
    field(o, pl->region, 0);
    field(o, postal, 0);
    field(o, l->country, 0);
    field(o, g->lang ? g->lang : l->language, 0);
    field(o, job, 0);
    field(o, birth, 1);
    if (o->overflow)
        return -EOVERFLOW;
    return fwrite(o->row, 1, o->len, o->f) == o->len ? 0 : -EIO;
}

/* ---- main ---------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gen_contacts --count N [--seed S] [--out FILE]\n\n"
            "Write N made-up contacts from thirteen locales as an RFC 4180 CSV file\n"
            "(UTF-8, CRLF, header row) for `outpost import`. The same seed gives the\n"
            "same file; e-mails and phones are unique and no two rows share name and\n"
            "locality, so the duplicate detector stays quiet.\n\n"
            "  --count N   rows to write, 0 to %u\n"
            "  --seed S    any unsigned 64-bit number (default 1)\n"
            "  --out FILE  write FILE (via FILE.tmp and a rename) instead of stdout\n",
            GEN_MAX_COUNT);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"count", required_argument, NULL, 'c'},
        {"seed", required_argument, NULL, 's'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t count = 0, seed = 1;
    int have_count = 0, c;
    const char *path = NULL;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (parse_u64(optarg, GEN_MAX_COUNT, &count) < 0) {
                fprintf(stderr, "gen_contacts: --count: expected 0 to %u, got '%s'\n",
                        GEN_MAX_COUNT, optarg);
                return 2;
            }
            have_count = 1;
            break;
        case 's':
            if (parse_u64(optarg, UINT64_MAX, &seed) < 0) {
                fprintf(stderr, "gen_contacts: --seed: expected an unsigned number, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'o':
            path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "gen_contacts: unknown or incomplete option '%s'\n\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "gen_contacts: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!have_count) {
        fprintf(stderr, "gen_contacts: --count is required\n\n");
        usage(stderr);
        return 2;
    }

    struct space spaces[NLOCALES];
    uint64_t per_locale = (count + NLOCALES - 1) / NLOCALES;
    for (size_t i = 0; i < NLOCALES; i++) {
        space_init(&spaces[i], &locales[i], i, seed);
        /* Both follow from the tables; checked so that an edit cannot
         * silently produce duplicates. */
        if (per_locale > capacity(&spaces[i])) {
            fprintf(stderr, "gen_contacts: locale %s has only %" PRIu64 " distinct rows\n",
                    locales[i].country, capacity(&spaces[i]));
            return 1;
        }
        for (size_t p = 0; p < locales[i].nplaces; p++)
            if (pow10u(phone_digits(locales[i].places[p].phone)) < per_locale) {
                fprintf(stderr, "gen_contacts: phone pattern %s is too short\n",
                        locales[i].places[p].phone);
                return 1;
            }
    }

    char tmp[4096];
    struct out o = {.f = stdout};
    if (path) {
        if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
            fprintf(stderr, "gen_contacts: file name too long\n");
            return 2;
        }
        o.f = fopen(tmp, "we");
        if (!o.f) {
            fprintf(stderr, "gen_contacts: cannot create %s: %s\n", tmp, strerror(errno));
            return 1;
        }
    }
    int rc = fputs("given_name,family_name,email,phone,street,locality,region,postal_code,"
                   "country,language,job_title,birth_date\r\n",
                   o.f) < 0
                 ? -EIO
                 : 0;
    for (uint64_t row = 0; rc == 0 && row < count; row++)
        rc = write_row(&o, seed, row, spaces);
    if (fflush(o.f) != 0 && rc == 0)
        rc = -EIO;
    if (path) {
        if (fclose(o.f) != 0 && rc == 0)
            rc = -EIO;
        if (rc == 0 && rename(tmp, path) != 0)
            rc = -errno;
        if (rc < 0)
            (void)unlink(tmp);
    }
    if (rc < 0) {
        fprintf(stderr, "gen_contacts: cannot write %s: %s\n", path ? path : "standard output",
                strerror(-rc));
        return 1;
    }
    return 0;
}
