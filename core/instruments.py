"""The orchestral instruments the corpus renders: General MIDI program and comfortable range."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Instrument:
    name: str
    program: int  # General MIDI program, 0-based
    low: int  # comfortable range, MIDI note numbers (inclusive)
    high: int
    vibrato: bool  # players of this instrument use vibrato idiomatically
    sustained_swell: bool = True  # bowed/blown: notes can swell (CC11)

    @property
    def centre(self) -> float:
        return (self.low + self.high) / 2


INSTRUMENTS: dict[str, Instrument] = {
    i.name: i
    for i in [
        Instrument("violin", 40, 55, 88, vibrato=True),
        Instrument("viola", 41, 48, 79, vibrato=True),
        Instrument("cello", 42, 36, 69, vibrato=True),
        Instrument("flute", 73, 60, 93, vibrato=True),
        Instrument("oboe", 68, 58, 86, vibrato=True),
        Instrument("clarinet", 71, 50, 84, vibrato=False),
        Instrument("bassoon", 70, 34, 67, vibrato=False),
        Instrument("trumpet", 56, 55, 81, vibrato=False),
        Instrument("french_horn", 60, 41, 72, vibrato=False),
        Instrument("tenor_sax", 66, 44, 75, vibrato=True),
    ]
}


def get_instrument(name: str) -> Instrument:
    try:
        return INSTRUMENTS[name]
    except KeyError:
        raise ValueError(f"unknown instrument {name!r}; known: {', '.join(sorted(INSTRUMENTS))}") from None


def midi_to_hz(m):
    return 440.0 * 2.0 ** ((m - 69) / 12.0)
