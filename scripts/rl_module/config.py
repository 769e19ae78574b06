"""Resolving the option space: default < preset < environment (where Nix renders its config) < flags.

The argparse parser is built from the spec; a command adds only its own arguments (what to act on, such
as a model id), never an option. Every value records where it came from, so that errors and
`--print-config` can say so.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from . import redact
from . import spec as spec_module
from .spec import Option, Spec

DEFAULT = "default"


class UsageError(Exception):
    """Bad usage or a bad value: the command prints the message on one line and exits 2."""


class Failure(Exception):
    """An expected failure the user should read about (an invalid model, nothing to load): exit 1."""


class ConfigError(UsageError):
    def __init__(self, option: Option, source: str, value: str, reason: str | None = None) -> None:
        self.option = option
        self.source = source
        self.value = value
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"option {option.path} from {source}: {value!r} is not allowed{why}; expected {option.allowed}"
        )


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str  # "default", "preset <name>", "env RL_ENV_N_ENVS", "flag --n-envs"


def flatten(nested: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """{feature: {option: x}} -> {"feature.option": x}: the shape of Config.values() back to option paths."""
    return {f"{feature}.{name}": value for feature, options in nested.items() for name, value in options.items()}


class Section:
    """The options of one feature, by name: `config.env.envId`."""

    def __init__(self, config: Config, key: str) -> None:
        self._config = config
        self._key = key

    def __getattr__(self, name: str) -> Any:
        try:
            return self._config.settings[f"{self._key}.{name}"].value
        except KeyError:
            raise AttributeError(f"no option {self._key}.{name}") from None


class Config:
    """A resolved configuration: option path -> Setting."""

    def __init__(self, settings: Mapping[str, Setting]) -> None:
        self.settings = dict(settings)

    def __getattr__(self, key: str) -> Section:
        if key.startswith("_") or not any(p.startswith(key + ".") for p in self.settings):
            raise AttributeError(key)
        return Section(self, key)

    def __getitem__(self, path: str) -> Any:
        return self.settings[path].value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self.values() == other.values()

    def source(self, path: str) -> str:
        return self.settings[path].source

    def given(self, path: str) -> Any:
        """The value when someone set it (environment, flag, Nix), else None: for filters that apply
        only when asked for."""
        setting = self.settings[path]
        return None if setting.source == DEFAULT or setting.source.startswith("preset") else setting.value

    def values(self) -> dict[str, dict[str, Any]]:
        """{feature: {option: value}}, JSON-ready."""
        nested: dict[str, dict[str, Any]] = {}
        for path, setting in self.settings.items():
            feature, name = path.split(".", 1)
            value = list(setting.value) if isinstance(setting.value, tuple) else setting.value
            nested.setdefault(feature, {})[name] = value
        return nested

    def with_layer(self, values: Mapping[str, Any], source: str) -> Config:
        """Lay `values` over the options still at their default (presets, a model's run): what the user
        set wins; a JSON object the user set is merged over the layer's, key by key."""
        settings = dict(self.settings)
        for path, value in values.items():
            if path not in settings:
                continue
            current = settings[path]
            if current.source == DEFAULT:
                settings[path] = Setting(value, source)
            elif isinstance(value, dict) and isinstance(current.value, dict):
                settings[path] = Setting({**value, **current.value}, f"{current.source} over {source}")
        return Config(settings)

    def refuse(self, path: str, reason: str) -> UsageError:
        """A value that parsed but cannot work (an unknown env, an algorithm that does not fit the action
        space): the same one-line shape as a bad value, naming the option and where it came from."""
        value = self[path]
        shown = redact.value(list(value) if isinstance(value, tuple) else value)
        return UsageError(f"option {path} from {self.source(path)}: {shown!r} {reason}")

    def replace(self, path: str, value: Any, source: str) -> Config:
        settings = dict(self.settings)
        settings[path] = Setting(value, source)
        return Config(settings)

    def public_values(self) -> dict[str, dict[str, Any]]:
        """values() as it may be written down (registry, experiment stores): credentials in URLs masked."""
        from .redact import value

        masked: dict[str, dict[str, Any]] = value(self.values())
        return masked

    def describe(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The configuration with the source of each value (what --print-config prints and config.json
        keeps), credentials in URLs masked."""
        described: dict[str, dict[str, dict[str, Any]]] = {}
        values = self.public_values()
        for path, setting in self.settings.items():
            feature, name = path.split(".", 1)
            described.setdefault(feature, {})[name] = {"value": values[feature][name], "source": setting.source}
        return described


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line (with a did-you-mean) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            unknown = message.split(":", 1)[1].split()
            # Only what this command shows in --help: another command's option is no suggestion here.
            known = [s for action in self._actions if action.help != argparse.SUPPRESS for s in action.option_strings]
            hints = []
            for word in unknown:
                flag = word.split("=", 1)[0]
                # A flag cut short (--env for --env-id) is meant as the flags it starts; else the closest.
                close = [k for k in known if k.startswith(flag + "-")][:2] if flag.startswith("--") else []
                close = close or difflib.get_close_matches(flag, known, n=1)
                if close:
                    hints.append(f"did you mean {' or '.join(close)}?")
            message = " ".join([message, *hints])
        raise UsageError(message)


def _metavar(option: Option) -> str:
    name, argument = spec_module._constructor(option.type)
    if name == "enum":
        return "{" + ",".join(argument) + "}"
    return option.flag.lstrip("-").replace("-", "_").upper()


def add_options(parser: argparse.ArgumentParser, spec: Spec, features: tuple[str, ...],
                shown: Callable[[str], bool] = lambda path: True) -> None:
    """One argument group per feature, one flag per option (two for booleans), all from the spec. An
    option that is not `shown` is still parsed, and hidden from --help and from suggestions."""
    for feature in spec.features:
        if feature.key not in features:
            continue
        visible = [option for option in feature.options if shown(option.path)]
        group = parser.add_argument_group(f"{feature.name} options") if visible else parser
        for option in feature.options:
            default = spec_module.to_nix(option.default)
            help_text = f"{option.description} [env {option.env}; default {default}]".replace("%", "%%")
            if not shown(option.path):
                help_text = argparse.SUPPRESS
            if option.neg_flag is not None:
                # The flag itself is stored, so that the source of the value names it.
                group.add_argument(option.flag, dest=option.path, action="store_const", const=option.flag,
                                   default=argparse.SUPPRESS, help=help_text)
                group.add_argument(option.neg_flag, dest=option.path, action="store_const",
                                   const=option.neg_flag, default=argparse.SUPPRESS,
                                   help=f"turn {option.path} off" if shown(option.path) else argparse.SUPPRESS)
            else:
                group.add_argument(option.flag, dest=option.path, default=argparse.SUPPRESS,
                                   metavar=_metavar(option), help=help_text)


def _parse(option: Option, text: str, source: str) -> Any:
    try:
        return option.parse(text)
    except (ValueError, RecursionError) as error:
        reason = str(error) if isinstance(error, spec_module.Hint) or str(error) == "empty" else None
        raise ConfigError(option, source, text, reason) from None


def _from_flags(option: Option, args: argparse.Namespace) -> Setting | None:
    text = getattr(args, option.path, None)
    if text is None:
        return None
    if option.is_bool:
        return Setting(text == option.flag, f"flag {text}")
    source = f"flag {option.flag}"
    return Setting(_parse(option, text, source), source)


def _from_environ(option: Option, environ: Mapping[str, str]) -> Setting | None:
    for name in (option.env, *option.env_fallbacks):
        if name in environ:
            source = f"env {name}"
            return Setting(_parse(option, environ[name], source), source)
    return None


def resolve(
    spec: Spec, features: tuple[str, ...], args: argparse.Namespace, environ: Mapping[str, str]
) -> Config:
    settings: dict[str, Setting] = {}
    for option in spec.options(features):
        settings[option.path] = (
            _from_flags(option, args) or _from_environ(option, environ) or Setting(option.default, DEFAULT)
        )
    return Config(settings)


def unknown_variables(spec: Spec, environ: Iterable[str]) -> list[str]:
    """Warnings for RL_* variables no option reads, each with a did-you-mean."""
    known = [o.env for o in spec.options()]
    warnings = []
    for name in sorted(environ):
        if name.startswith("RL_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"warning: unknown variable {name} is ignored{hint}")
    return warnings


@dataclass(frozen=True)
class Command:
    """What a console script is: its name, the features it reads, its own arguments and its job."""

    prog: str
    description: str
    features: tuple[str, ...]
    action: Callable[[Config, argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    # Options resolved after the environment and flags, over defaults only (training presets).
    layer: Callable[[Config], Config] | None = None
    # What the command reads, as features or option paths (None: all of `features`). The others are resolved
    # (a run records the whole space) but left out of --help and suggestions; --help-all shows them all.
    uses: tuple[str, ...] | None = None

    def reads(self, path: str) -> bool:
        return self.uses is None or path in self.uses or path.split(".", 1)[0] in self.uses

    def parser(self, spec: Spec, everything: bool = False) -> Parser:
        parser = Parser(prog=self.prog, description=self.description, allow_abbrev=False,
                        epilog="Every option is also an environment variable (shown in brackets); "
                               "flags win over the environment, which wins over defaults."
                               + (" --help-all lists the whole option space." if not everything and any(
                                   not self.reads(o.path) for o in spec.options(self.features)) else ""))
        parser.add_argument("--print-config", action="store_true",
                            help="print the resolved configuration, with the source of each value, as JSON and exit")
        if self.features:
            parser.add_argument("--help-all", action=_HelpAll, command=self,
                                help="show the help with every option of the option space, also those this "
                                     "command does not read, and exit")
        if self.add_arguments:
            self.add_arguments(parser)
        # The usage line shows the command's own arguments; the options, dozens of them, are in --help.
        own = parser.format_usage().removeprefix("usage: ").strip()
        parser.usage = own.replace(self.prog, "%(prog)s", 1) + (" [OPTION ...]" if self.features else "")
        add_options(parser, spec, self.features, (lambda path: True) if everything else self.reads)
        return parser

    def configure(self, argv: Sequence[str] | None, environ: Mapping[str, str]) -> tuple[Config, argparse.Namespace]:
        spec = spec_module.load()
        for warning in unknown_variables(spec, environ):
            print(f"{self.prog}: {warning}", file=sys.stderr)
        arguments = list(sys.argv[1:] if argv is None else argv)
        parser = self.parser(spec)
        if "--print-config" in arguments:  # the configuration alone: what to act on is not needed to show it
            for action in parser._actions:
                if not action.option_strings and action.required:
                    action.required, action.nargs = False, "*" if action.nargs == "+" else "?"
        args = parser.parse_args(arguments)
        config = resolve(spec, self.features, args, environ)  # a bad value is refused first, on its own line
        for option in spec.options(self.features):
            flag = getattr(args, option.path, None)
            if flag is not None and not self.reads(option.path):
                shown = flag if option.is_bool else option.flag
                print(f"{self.prog}: warning: {shown} ({option.path}) is not read by {self.prog} and does nothing "
                      f"here ({self.prog} --help lists what it reads)", file=sys.stderr)
        check_values(config)
        if "env" in self.features:
            from .env import canonical  # one env id everywhere: presets, thresholds, registry filters

            config = canonical(config)
        if self.layer:
            config = self.layer(config)
        return config, args


class _HelpAll(argparse.Action):
    """--help-all: the help with the whole option space, for a command whose --help shows what it reads."""

    def __init__(self, option_strings: Sequence[str], dest: str, command: Command, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)
        self.command = command

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        self.command.parser(spec_module.load(), everything=True).print_help()
        parser.exit()


# Options that name a database: a typo in a URL's scheme must not become a file of that name.
DATABASE_OPTIONS = ("registry.dbPath",)
OTLP_FEATURES = ("metrics", "traces", "logs")


def check_values(config: Config) -> None:
    """What a value's own parser cannot see, refused before any work (exit 2): a database URL that would
    open something else than meant, and an OTLP endpoint that can never connect."""
    from .databases import check_target

    for path in DATABASE_OPTIONS:
        if path in config.settings:
            check_target(config[path], f"option {path} from {config.source(path)}")
    for feature in OTLP_FEATURES:
        if f"{feature}.endpoint" not in config.settings:
            continue
        endpoint, protocol = config[f"{feature}.endpoint"], config[f"{feature}.protocol"]
        if config[f"{feature}.enable"] and endpoint is not None and protocol == "grpc" and "@" in endpoint:
            headers = f"OTEL_EXPORTER_OTLP_{feature.upper()}_HEADERS"
            raise config.refuse(f"{feature}.endpoint", f"holds a user name or password, which OTLP over gRPC never "
                                f"sends (the exporter could never connect): give the endpoint without it and the "
                                f"credential as a header, {headers}=authorization=Basic%20<base64 of user:password> "
                                f"(or a token: authorization=Bearer%20<token>), or use {feature}.protocol http")


ALL_FEATURES = tuple(f.key for f in spec_module.load().features)


def print_config(config: Config) -> None:
    print(json.dumps(config.describe(), indent=2))
