#!/usr/bin/env python3
"""False positives and misses of the duplicate rule on a labelled file.

usage: measure.py LABELS.csv REPORT.csv

REPORT.csv is what `outpost import --on-duplicate new --report` wrote for
the file make_labelled.py made. A row is a true duplicate when its person
appeared on an earlier line; the rule found it when the report's action is
`new` (a probable duplicate, imported anyway) and the existing id is a
record of the same person. Prints the figures per kind of planted row.
"""
import csv
import sys
from collections import Counter, defaultdict


def main():
    labels = {}
    person_of = {}
    with open(sys.argv[1], encoding='utf-8') as f:
        for r in csv.DictReader(f):
            labels[int(r['line'])] = r
            person_of[r['id']] = r['person']
    report = {}
    with open(sys.argv[2], encoding='utf-8') as f:
        for r in csv.DictReader(f):
            report[int(r['line'])] = r
    seen = set()
    stats = defaultdict(Counter)
    tp = fp = fn = tn = warned_misses = 0
    for line in sorted(labels):
        lab = labels[line]
        dup_truth = lab['person'] in seen
        seen.add(lab['person'])
        rep = report.get(line, {'action': 'missing', 'existing_id': ''})
        found = rep['action'] == 'new'
        right = found and person_of.get(rep['existing_id']) == lab['person']
        k = lab['kind']
        if dup_truth and right:
            tp += 1
            stats[k]['found'] += 1
        elif dup_truth:
            fn += 1
            stats[k]['missed'] += 1
            if rep['action'] == 'create' and rep['existing_id']:
                warned_misses += 1
                stats[k]['missed, warned'] += 1
        elif found:
            fp += 1
            stats[k]['false positive'] += 1
        else:
            tn += 1
            stats[k]['rightly new'] += 1
    print(f'rows {len(labels)}; true duplicates {tp + fn}: found {tp}, missed {fn} '
          f'({warned_misses} of them warned: same name and locality); '
          f'false positives {fp} of {fp + tn} distinct people')
    print(f'precision {tp / max(tp + fp, 1):.3f}, recall {tp / max(tp + fn, 1):.3f}')
    for k in sorted(stats):
        print(f'  {k:16s} ' + ', '.join(f'{n} {v}' for v, n in sorted(stats[k].items())))


if __name__ == '__main__':
    main()
