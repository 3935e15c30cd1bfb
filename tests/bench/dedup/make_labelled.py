#!/usr/bin/env python3
"""A labelled contacts file for measuring the duplicate rule.

usage: make_labelled.py OUT.csv LABELS.csv [PEOPLE] [SEED]

OUT.csv is an import file (with ids) of PEOPLE distinct people (default
1000) in an EU-DE node's address book, followed by planted rows: second
records of some of them, written as people really write them again
(typos, transliterations, reordered names, diacritics dropped, another
phone spelling, another e-mail case), and different people who share a
name with someone (in the same town, or even at the same street).
LABELS.csv says, for every line of OUT.csv, which person it is and how it
was made, so measure.py can count false positives and misses.
"""
import random
import sys
import time

GIVEN = ['José', 'María', 'Jürgen', 'Łukasz', 'Zoë', 'Søren', 'Anna', 'Peter', 'Katarzyna',
         'Agnieszka', 'François', 'Hélène', 'Ana', 'João', 'Gonçalo', 'Sergey', 'Olga',
         'Dmitry', 'Natalia', 'Mikhail', 'Wei', 'Fatima', 'Mohammed', 'Grzegorz', 'Małgorzata',
         'Thomas', 'Stefan', 'Sabine', 'Ingrid', 'Björn', 'Chloé', 'Renée', 'Tomasz',
         'Aleksandr', 'Yuri', 'Elena', 'Carlos', 'Lucía', 'Andrés', 'Müge']
FAMILY = ['Müller', 'Schmidt', 'Schneider', 'Fischer', 'Weiß', 'Wójcik', 'Kowalski',
          'Nowak', 'Lewandowski', 'García', 'Fernández', 'González', 'Rodríguez', 'Silva',
          'Gonçalves', 'Ivanov', 'Smirnov', 'Kuznetsov', 'Popov', 'Sokolov', 'Dubois',
          'Lefèvre', 'Öztürk', 'Yılmaz', 'Jensen', 'Hansen', 'Lindqvist', 'Brown', 'Taylor',
          'Zieliński', 'Krüger', 'Schäfer', 'Chen', 'Wang', 'Pereira', 'Costa', 'Martín',
          'Hoffmann', 'Koch', 'Bauer']
CYR = {'Sergey': 'Сергей', 'Olga': 'Ольга', 'Dmitry': 'Дмитрий', 'Natalia': 'Наталья',
       'Mikhail': 'Михаил', 'Aleksandr': 'Александр', 'Yuri': 'Юрий', 'Elena': 'Елена',
       'Ivanov': 'Иванов', 'Smirnov': 'Смирнов', 'Kuznetsov': 'Кузнецов', 'Popov': 'Попов',
       'Sokolov': 'Соколов'}
TRANSLIT = {'Müller': 'Mueller', 'Weiß': 'Weiss', 'Krüger': 'Krueger', 'Schäfer': 'Schaefer',
            'Jürgen': 'Juergen', 'Björn': 'Bjoern', 'Søren': 'Soeren', 'Öztürk': 'Oeztuerk',
            'Sergey': 'Sergei', 'Dmitry': 'Dmitri', 'Yuri': 'Iouri', 'Ivanov': 'Ivanoff',
            'Aleksandr': 'Alexander', 'Mikhail': 'Michail', 'Natalia': 'Natalya',
            'Smirnov': 'Smirnoff', 'Popov': 'Popoff', 'Schmidt': 'Shmidt'}
STREETS = ['Hauptstraße', 'Bahnhofstraße', 'Gartenweg', 'Schillerstraße', 'Lindenallee',
           'Kirchgasse', 'Am Markt', 'Goethestraße', 'Bergstraße', 'Waldweg', 'Mühlenweg',
           'Rosenstraße']
TOWNS = [('Berlin', '30'), ('Hamburg', '40'), ('München', '89'), ('Köln', '221'),
         ('Leipzig', '341'), ('Dresden', '351')]

PLAIN = str.maketrans('áéíóúàèìòùäëïöüçãõâêôñłśźżńćąęøåßığşÁÉÍÓÚÄÖÜŁŚŻ',
                      'aeiouaeiouaeioucaoaeonlszzncaeoasigsAEIOUAOULSZ')


def uuid7(rng, ms):
    r = rng.getrandbits(74)
    h = f'{ms:012x}' + '7' + f'{r >> 62 & 0xfff:03x}' + \
        f'{0x8 | (r >> 60 & 0x3):x}' + f'{r & ((1 << 60) - 1):015x}'
    return f'{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}'


def typo(rng, w):
    if len(w) < 5:
        return w
    i = rng.randrange(1, len(w) - 1)
    kind = rng.choice(['swap', 'drop', 'double'])
    if kind == 'swap':
        return w[:i] + w[i + 1] + w[i] + w[i + 2:]
    if kind == 'drop':
        return w[:i] + w[i + 1:]
    return w[:i] + w[i] + w[i:]


def local_phone(area, num):
    return f'0{area} {num}'


def intl_phone(area, num, rng):
    return rng.choice([f'+49 {area} {num}', f'0049 {area} {num}', f'+49 (0){area} {num}',
                       f'+49-{area}-{num}'])


def main():
    out, labels = sys.argv[1], sys.argv[2]
    people = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 16)
    ms = int(time.time() * 1000) - 10_000_000
    rows = []  # (person, kind, fields)
    base = []
    for p in range(people):
        g, f = rng.choice(GIVEN), rng.choice(FAMILY)
        town, area = rng.choice(TOWNS)
        num = f'{rng.randrange(2000000, 9999999)}'
        street = f'{rng.choice(STREETS)} {rng.randrange(1, 120)}'
        rec = {'given_name': g, 'family_name': f, 'email': f'p{p}.{rng.randrange(10**6)}@example.org',
               'phone': local_phone(area, num) if rng.random() < 0.7 else '',
               'street': street if rng.random() < 0.8 else '', 'locality': town,
               '_area': area, '_num': num}
        base.append(rec)
        rows.append((p, 'original', rec))
    planted = []
    for p in rng.sample(range(people), people // 4):
        b = base[p]
        kind = rng.choice(['typo', 'translit', 'reordered', 'plain', 'phone', 'email',
                           'name_town_only'])
        r = {'given_name': b['given_name'], 'family_name': b['family_name'], 'email': '',
             'phone': '', 'street': '', 'locality': b['locality']}
        if kind == 'typo':
            r['family_name'] = typo(rng, r['family_name'])
            r['street'] = b['street']
        elif kind == 'translit':
            for k in ('given_name', 'family_name'):
                r[k] = TRANSLIT.get(r[k], CYR.get(r[k], r[k].translate(PLAIN)))
            r['street'] = b['street']
            if not r['street'] and b['phone']:
                r['phone'] = intl_phone(b['_area'], b['_num'], rng)
        elif kind == 'reordered':
            r['given_name'], r['family_name'] = b['family_name'], b['given_name']
            r['street'] = b['street']
            if not r['street'] and b['phone']:
                r['phone'] = b['phone']
        elif kind == 'plain':
            r['given_name'] = r['given_name'].translate(PLAIN).lower()
            r['family_name'] = r['family_name'].translate(PLAIN).upper()
            r['street'] = b['street'].replace('straße', 'str.')
        elif kind == 'phone':
            if not b['phone']:
                continue
            r['phone'] = intl_phone(b['_area'], b['_num'], rng)
            r['given_name'] = r['given_name'][0] + '.'
        elif kind == 'email':
            r['email'] = b['email'].upper()
            r['family_name'] = typo(rng, r['family_name'])
        else:  # the same person with nothing in common but name and town
            pass
        if kind in ('typo', 'translit', 'reordered', 'plain') and not r['street'] and not r['phone']:
            kind = 'name_town_only'
        planted.append((p, kind, r))
    # different people who share a name: in the same town, and at the same street
    for i in range(people // 10):
        p = rng.randrange(people)
        b = base[p]
        same_street = i % 3 == 0 and b['street']
        r = {'given_name': b['given_name'], 'family_name': b['family_name'],
             'email': f'other{i}@example.net', 'phone': '',
             'street': b['street'] if same_street else '', 'locality': b['locality']}
        planted.append((people + i, 'namesake_street' if same_street else 'namesake_town', r))
    rng.shuffle(planted)
    rows += planted
    cols = ['id', 'given_name', 'family_name', 'email', 'phone', 'street', 'locality']
    with open(out, 'w', encoding='utf-8', newline='') as fo, \
            open(labels, 'w', encoding='utf-8', newline='') as fl:
        fo.write(','.join(cols) + '\r\n')
        fl.write('line,id,person,kind\r\n')
        for n, (p, kind, r) in enumerate(rows):
            ms += rng.randrange(1, 50)
            rid = uuid7(rng, ms)
            vals = [rid] + [r[c] for c in cols[1:]]
            fo.write(','.join(f'"{v}"' if ',' in v else v for v in vals) + '\r\n')
            fl.write(f'{n + 2},{rid},{p},{kind}\r\n')


if __name__ == '__main__':
    main()
