"""Fetch yesterday's exchange rates from a CSV export and print EUR conversions."""
import csv
import sys


def load_rates(path):
    with open(path, newline="") as f:
        return {row["currency"]: float(row["per_eur"]) for row in csv.DictReader(f)}


if __name__ == "__main__":
    rates = load_rates(sys.argv[1])
    for cur, rate in sorted(rates.items()):
        print(f"100 EUR = {100 * rate:.2f} {cur}")
