"""Reading a Prometheus text exposition in tests: families, samples and label values."""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

_TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)


@dataclass
class Scrape:
    text: str

    @classmethod
    def of(cls, address: str) -> Scrape:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
            return cls(response.read().decode())

    def families(self) -> dict[str, str]:
        """Exposed metric family names (as on the ``# TYPE`` lines) and their types."""
        return dict(_TYPE_LINE.findall(self.text))

    def samples(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        found = []
        for family in text_string_to_metric_families(self.text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items()):
                    found.append((dict(sample.labels), sample.value))
        return found

    def total(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        return sum(value for _, value in self.samples(name, **labels))

    def label_sets(self, prefix: str) -> list[tuple[str, dict[str, str]]]:
        """Every (sample name, labels) whose name starts with ``prefix``."""
        return [
            (sample.name, dict(sample.labels))
            for family in text_string_to_metric_families(self.text)
            for sample in family.samples
            if sample.name.startswith(prefix)
        ]
