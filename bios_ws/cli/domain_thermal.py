"""`vbios domain thermal ...`: a domain's temperatures and its thermal policy, for the host
admin, in-process on the home's store and machines (a server need not run; the policy
itself runs in `vbios serve`, which acts on a change within its period)::

    vbios domain thermal NAME [--json]
    vbios domain thermal thresholds NAME --caution C --critical C --fatal C [--hysteresis H]
    vbios domain thermal override NAME SENSOR VALUE --minutes M
    vbios domain thermal override-clear NAME SENSOR

Every form prints the domain's readings as they are after it (``--json``: one object,
the keys of `vbios-client thermal --json`). A domain named like a command word is shown
with ``vbios domain thermal show NAME``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bios_ws.cli.output import json_text, rfc3339
from bios_ws.domain.principal import Principal, check_domain_id

if TYPE_CHECKING:  # imported where used: `vbios --help` loads no crypto, database or SOAP
    from bios_ws.bootstrap import App
    from bios_ws.service.thermal import ThermalService
    from bios_ws.service.thermal_sample import SensorView, ThermalView

Subparsers = argparse._SubParsersAction
Action = Callable[["App", argparse.Namespace], int]
ADMIN = Principal.admin()
USAGE = """vbios domain thermal NAME [--json]
       vbios domain thermal thresholds NAME --caution C --critical C --fatal C [--hysteresis H]
       vbios domain thermal override NAME SENSOR VALUE --minutes M
       vbios domain thermal override-clear NAME SENSOR"""
#: Each form: its command word, the words after it, and the options it takes.
FORMS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "show": (("NAME",), frozenset()),
    "thresholds": (("NAME",), frozenset({"caution", "critical", "fatal", "hysteresis"})),
    "override": (("NAME", "SENSOR", "VALUE"), frozenset({"minutes"})),
    "override-clear": (("NAME", "SENSOR"), frozenset()),
}
_OPTIONS = ("caution", "critical", "fatal", "hysteresis", "minutes")


def register(sub: Subparsers[argparse.ArgumentParser], common: argparse.ArgumentParser,
             run_app: Callable[[argparse.Namespace, Action], int]) -> None:
    """Add ``thermal`` to ``vbios domain``."""
    thermal = sub.add_parser(
        "thermal", parents=[common], usage=USAGE,
        help="a domain's temperatures, fans and thermal policy (thresholds, overrides)",
        description="A domain's temperatures (CPU and inlet, degrees Celsius), fans and"
                    " thermal state; its CPU thresholds; an admin's override of a sensor"
                    " (for drills: it reads at least VALUE for M minutes, at most 60).")
    thermal.add_argument("words", nargs="+", metavar="WORD", help=argparse.SUPPRESS)
    thermal.add_argument("--json", action="store_true", help="print JSON")
    for name, text in (("caution", "UpperCaution"), ("critical", "UpperCritical"),
                       ("fatal", "UpperFatal")):
        thermal.add_argument(f"--{name}", type=float, metavar="C", help=f"{text} (degC)")
    thermal.add_argument("--hysteresis", type=float, metavar="H",
                         help="how far below a threshold a reading clears it (default: the"
                              " domain's, 2 degC at first)")
    thermal.add_argument("--minutes", type=float, metavar="M",
                         help="how long an override lasts (at most 60)")

    def run(args: argparse.Namespace) -> int:
        form, values = _form(thermal, args)
        args.thermal_form, args.thermal_values = form, values
        return run_app(args, _run)

    thermal.set_defaults(run=run)


def _form(parser: argparse.ArgumentParser, args: argparse.Namespace
          ) -> tuple[str, list[str]]:
    """Which form the words make (the usage error of ``parser`` if none)."""
    words = list(args.words)
    form = words[0] if words[0] in FORMS else "show"
    if words[0] in FORMS:  # a command word (`show` too), then its words
        words = words[1:]
    expected, options = FORMS[form]
    if len(words) != len(expected):
        parser.error(f"{form} takes {' '.join(expected)}")
    given = {name for name in _OPTIONS if getattr(args, name) is not None}
    if given - options:
        parser.error(f"{form} takes no --{', --'.join(sorted(given - options))}")
    missing = {"thresholds": {"caution", "critical", "fatal"}, "override": {"minutes"}}.get(
        form, set()) - given
    if missing:
        parser.error(f"{form} needs --{', --'.join(sorted(missing))}")
    return form, words


def _service(app: App) -> ThermalService:
    from bios_ws.service.thermal import ThermalService

    return app.use(ThermalService)


def _run(app: App, args: argparse.Namespace) -> int:
    from bios_ws.errors import AdminError

    form, words = args.thermal_form, args.thermal_values
    name = check_domain_id(words[0])
    thermal = _service(app)
    if form == "thresholds":
        view = thermal.set_thresholds(ADMIN, name, args.caution, args.critical, args.fatal,
                                      args.hysteresis)
    elif form == "override":
        try:
            value = float(words[2])
        except ValueError:
            raise AdminError(f"VALUE must be a temperature in degC, not {words[2]!r}"
                             ) from None
        if not math.isfinite(args.minutes) or args.minutes <= 0:
            raise AdminError("--minutes must be a positive number")
        view = thermal.override(ADMIN, name, words[1], value,
                                timedelta(minutes=args.minutes))
    elif form == "override-clear":
        view = thermal.override(ADMIN, name, words[1], None)
    else:
        view = thermal.thermal(ADMIN, name)
    print(json_text(thermal_json(view)) if args.json
          else describe(view))
    return 0


def describe(view: ThermalView) -> str:
    lines = [f"{view.domain_id}: {view.level.label} (health {view.level.health}),"
             f" {view.power_state.value}, CPU load {round(view.load * 100, 1):g} %,"
             f" {view.watts:g} W, ambient {view.ambient_source}, read at {rfc3339(view.time)}",
             f"{'SENSOR':<8} {'READING':>8} {'MODEL':>8} {'CAUTION':>8} {'CRITICAL':>8}"
             f" {'FATAL':>8} {'HYST':>5}  OVERRIDE"]
    for sensor in view.sensors:
        limits = sensor.thresholds
        cells = ("-",) * 4 if limits is None else tuple(
            f"{v:g}" for v in (limits.caution, limits.critical, limits.fatal,
                               limits.hysteresis))
        lines.append(f"{sensor.sensor.value:<8} {sensor.reading:>8.2f} {sensor.model:>8.2f}"
                     f" {cells[0]:>8} {cells[1]:>8} {cells[2]:>8} {cells[3]:>5}"
                     f"  {_override(sensor)}")
    lines.append("  ".join(f"{fan.name} {fan.speed_percent:g} % ({fan.rpm:g} RPM)"
                           for fan in view.fans))
    return "\n".join(lines)


def thermal_json(view: ThermalView) -> dict[str, Any]:
    """The view as `vbios-client thermal --json` prints a guest's."""
    return {
        "domain": view.domain_id, "state": view.level.label, "health": view.level.health,
        "power_state": view.power_state.value, "load_percent": round(view.load * 100, 1),
        "power_watts": view.watts, "ambient_source": view.ambient_source,
        "reading_time": rfc3339(view.time),
        "temperatures": [_sensor_json(sensor) for sensor in view.sensors],
        "fans": [{"name": fan.name, "speed_percent": fan.speed_percent,
                  "speed_rpm": float(fan.rpm)} for fan in view.fans],
    }


def _sensor_json(sensor: SensorView) -> dict[str, Any]:
    from bios_ws.domain.thermal_policy import PHYSICAL_CONTEXT

    limits = sensor.thresholds
    override = sensor.override
    return {
        "name": sensor.sensor.value, "physical_context": PHYSICAL_CONTEXT[sensor.sensor],
        "reading": sensor.reading, "model": sensor.model, "units": "Cel",
        "thresholds": None if limits is None else {
            name: {"reading": value, "hysteresis": limits.hysteresis}
            for name, value in (("upper_caution", limits.caution),
                                ("upper_critical", limits.critical),
                                ("upper_fatal", limits.fatal))},
        "override": None if override is None else {
            "reading": override.value, "expires": rfc3339(override.expires_at),
            "set_by": override.set_by},
    }


def _override(sensor: SensorView) -> str:
    override = sensor.override
    if override is None:
        return "-"
    return f"{override.value:g} until {rfc3339(override.expires_at)} ({override.set_by})"
