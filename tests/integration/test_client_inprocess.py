"""The real vbios_client, through its bundled WSDL, against the in-process Spyne app.

A requests adapter hands each request to the WSGI app with the caller's principal
already in the environ (what the TLS layer does in the real server).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import vbios_client as vc
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from vbios_client import _contract

from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.principal import Principal
from bios_ws.errors import StoreUnavailable as ServerStoreUnavailable
from bios_ws.platform.simulated import in_memory_machines
from bios_ws.registry_file import load_registry
from bios_ws.service.bios import BiosService
from bios_ws.service.domains import DomainService
from bios_ws.service.use_cases import UseCases
from bios_ws.soap.app import PRINCIPAL_ENVIRON_KEY, create_wsgi_app

URL = "https://vbios.test:8443/"
SOAP11 = b"http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = b"http://www.w3.org/2003/05/soap-envelope"
Rewrite = Callable[[bytes], bytes]


class WsgiAdapter(BaseAdapter):
    """Sends a requests request to a WSGI app in-process, as ``principal``."""

    def __init__(self, app: Any, principal: Principal, rewrite: Rewrite | None = None,
                 reply: Callable[[], tuple[int, str, bytes]] | None = None) -> None:
        super().__init__()
        self.app, self.principal, self.rewrite, self.reply = app, principal, rewrite, reply
        self.bodies: list[bytes] = []

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        if self.rewrite is not None:
            body = self.rewrite(body)
        self.bodies.append(body)
        if self.reply is not None:
            status, content_type, content = self.reply()
            return self._response(request, status, {"Content-Type": content_type}, content)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method, "PATH_INFO": "/", "QUERY_STRING": "",
            "SERVER_NAME": "vbios.test", "SERVER_PORT": "8443", "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(), "wsgi.url_scheme": "https", "wsgi.version": (1, 0),
            "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
            PRINCIPAL_ENVIRON_KEY: self.principal,
        }
        for name, value in request.headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key != "CONTENT_LENGTH":
                environ[f"HTTP_{key}"] = value
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> Any:
            started["status"], started["headers"] = status, headers
            return lambda data: None

        chunks = self.app(environ, start_response)
        content = b"".join(chunks)
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        return self._response(request, int(started["status"].split()[0]),
                              dict(started["headers"]), content)

    @staticmethod
    def _response(request: requests.PreparedRequest, status: int, headers: dict[str, str],
                  content: bytes) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(headers)
        response._content = content
        response.url = request.url or URL
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass


class World:
    """A memory store with domain vm1 and a service over it."""

    def __init__(self) -> None:
        self.registry = load_registry()
        self.store = MemoryStore()
        DomainService(self.store.unit_of_work, self.registry,
            in_memory_machines()).create(Principal.admin(), "vm1")
        self.bios = BiosService(self.store.unit_of_work, self.registry)
        self.app = create_wsgi_app(UseCases([self.bios]))

    def client(self, principal: Principal | None = None, **adapter: Any) -> vc.BiosClient:
        session = requests.Session()
        session.trust_env = False
        self.adapter = WsgiAdapter(self.app, principal or Principal.guest("vm1"), **adapter)
        session.mount("https://", self.adapter)
        return vc.BiosClient._over_session(URL, session, timeout=5)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def bios(world: World) -> Iterator[vc.BiosClient]:
    with world.client() as client:
        yield client


# -- every method ----------------------------------------------------------------


def test_registry_is_decoded_into_models(bios: vc.BiosClient, world: World) -> None:
    registry = bios.get_attribute_registry()
    assert registry.version == world.registry.registry_version
    assert [d.name for d in registry] == [d.name for d in world.registry]
    timeout = registry.lookup("BootTimeout")
    assert (timeout.type, timeout.lower_bound, timeout.upper_bound) == ("Integer", 0, 300)
    assert timeout.scalar_increment == 5 and timeout.default == 5
    boot_mode = registry.lookup("BootMode")
    assert boot_mode.allowed_values == ("Uefi", "Bios") and boot_mode.reset_required
    assert registry.lookup("BiosVersion").read_only
    assert registry.lookup("NumLock").default is True
    assert registry.lookup("SetupPassword").default is None
    assert registry.lookup("SetupPassword").min_length == 8


def test_get_attributes_all_and_some(bios: vc.BiosClient, world: World) -> None:
    everything = bios.get_attributes()
    assert everything.version == 1 and everything.setup_password_set is False
    # this world's installation has no Secure Boot keys: the mode follows them
    assert everything.values == {**world.registry.defaults(), "SecureBootMode": "SetupMode"}
    some = bios.get_attributes(["BootTimeout", "NumLock"])
    assert some.values == {"BootTimeout": 5, "NumLock": True}
    assert type(some.values["BootTimeout"]) is int and type(some.values["NumLock"]) is bool


def test_set_attributes_typed_values_and_versions(bios: vc.BiosClient) -> None:
    version = bios.set_attributes({"BootTimeout": 10, "NumLock": False, "AssetTag": "rack-7"})
    assert version == 2
    values = bios.get_attributes(["BootTimeout", "NumLock", "AssetTag"]).values
    assert values == {"BootTimeout": 10, "NumLock": False, "AssetTag": "rack-7"}
    assert bios.set_attributes({"BootTimeout": 15}, expected_version=2) == 3


def test_pending_cancel_and_reset_to_defaults(bios: vc.BiosClient) -> None:
    version = bios.set_attributes({"BootMode": "Bios"}, apply_time="OnReset")
    pending = bios.get_pending_attributes()
    assert (pending.version, pending.values) == (version, {"BootMode": "Bios"})
    assert bios.get_attributes(["BootMode"]).values == {"BootMode": "Uefi"}
    version = bios.cancel_pending_attributes(expected_version=version)
    assert bios.get_pending_attributes().values == {}
    bios.set_attributes({"BootTimeout": 20})
    version = bios.reset_attributes_to_defaults()
    pending = bios.get_pending_attributes()
    assert pending.version == version and pending.values["BootTimeout"] == 5
    assert "BiosVersion" not in pending.values


def test_boot_order_and_boot_next(bios: vc.BiosClient) -> None:
    config = bios.get_boot_order()
    assert config.version == 1 and config.boot_next is None
    assert set(config.order) == {o.id for o in config.options}
    reversed_order = list(reversed(config.order))
    version = bios.set_boot_order(reversed_order)
    assert bios.get_boot_order().order == tuple(reversed_order)
    version = bios.set_boot_next(config.order[1], expected_version=version)
    assert bios.get_boot_order().boot_next == config.order[1]
    version = bios.set_boot_next(None)
    after = bios.get_boot_order()
    assert after.boot_next is None and after.version == version


def test_setup_password_guards_every_write(bios: vc.BiosClient) -> None:
    bios.change_password("SetupPassword", None, "correct-horse")
    assert bios.get_attributes().setup_password_set is True
    with pytest.raises(vc.PasswordRequired):
        bios.set_attributes({"BootTimeout": 10})
    with pytest.raises(vc.InvalidPassword):
        bios.set_attributes({"BootTimeout": 10}, password="wrong-horse")
    with pytest.raises(vc.InvalidPassword):
        bios.change_password("SetupPassword", "wrong-horse", "other-horse")
    bios.set_attributes({"BootTimeout": 10}, password="correct-horse")
    bios.set_boot_next("Pxe.Nic.0", password="correct-horse")
    bios.change_password("SetupPassword", "correct-horse", "better-horse")
    with pytest.raises(vc.InvalidPassword):
        bios.cancel_pending_attributes(password="correct-horse")
    bios.cancel_pending_attributes(password="better-horse")


def test_empty_new_password_clears_it(bios: vc.BiosClient) -> None:
    bios.change_password("SetupPassword", None, "correct-horse")
    bios.change_password("SetupPassword", "correct-horse", "")
    assert bios.get_attributes().setup_password_set is False
    bios.set_attributes({"BootTimeout": 15})


def test_empty_string_value_round_trips(bios: vc.BiosClient) -> None:
    bios.set_attributes({"AssetTag": "rack-7"})
    bios.set_attributes({"AssetTag": ""})
    assert bios.get_attributes(["AssetTag"]).values == {"AssetTag": ""}


def test_passwords_never_reach_the_log(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with world.client() as client:
        client.change_password("SetupPassword", None, "sekrit-Pa55word")
        with pytest.raises(vc.InvalidPassword):
            client.set_attributes({"NumLock": False}, password="wr0ng-sekrit")
    assert b"sekrit-Pa55word" in world.adapter.bodies[0]  # it did travel ...
    assert "sekrit-Pa55word" not in caplog.text  # ... but was never logged
    assert "wr0ng-sekrit" not in caplog.text


# -- every fault class -------------------------------------------------------------


def test_refusals_map_to_their_classes(bios: vc.BiosClient) -> None:
    cases: list[tuple[type[vc.FaultError], Callable[[], object], str | None]] = [
        (vc.UnknownAttribute, lambda: bios.get_attributes(["NoSuchThing"]), "NoSuchThing"),
        (vc.UnknownAttribute, lambda: bios.set_attributes({"NoSuchThing": 1}), "NoSuchThing"),
        (vc.InvalidAttributeValue, lambda: bios.set_attributes({"BootTimeout": 7}),
         "BootTimeout"),
        (vc.InvalidAttributeValue, lambda: bios.set_attributes({"BootTimeout": "10"}),
         "BootTimeout"),
        (vc.ReadOnlyAttribute, lambda: bios.set_attributes({"BiosVersion": "9"}), "BiosVersion"),
        (vc.ResetRequired, lambda: bios.set_attributes({"BootMode": "Bios"}), "BootMode"),
        (vc.VersionConflict, lambda: bios.set_attributes({"NumLock": False},
                                                         expected_version=99), None),
        (vc.InvalidBootOrder, lambda: bios.set_boot_order(["Disk.Virtio.0"]), None),
        (vc.UnknownBootOption, lambda: bios.set_boot_next("Floppy.0"), "Floppy.0"),
    ]
    for cls, call, attribute in cases:
        with pytest.raises(cls) as caught:
            call()
        assert caught.value.code == cls.code
        assert caught.value.message
        if attribute is not None:
            assert caught.value.attribute == attribute
    assert bios.get_attributes().version == 1  # nothing changed


def test_invalid_request(bios: vc.BiosClient) -> None:
    with pytest.raises(vc.InvalidRequest):
        bios._channel.call("SetAttributes", Attributes={"AttributeValue": []},
                           ApplyTime="Immediate")


def test_access_denied_for_a_non_guest(world: World) -> None:
    with world.client(Principal.admin()) as admin, pytest.raises(vc.AccessDenied):
        admin.get_attributes()


def test_domain_not_found(world: World) -> None:
    with world.client(Principal.guest("ghost")) as ghost, pytest.raises(vc.DomainNotFound):
        ghost.get_boot_order()


class BrokenUow:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def __call__(self) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "cls"),
    [(RuntimeError("disk on fire /secret/path"), vc.InternalError),
     (ServerStoreUnavailable("database is down"), vc.StoreUnavailable)],
)
def test_server_failures(world: World, exc: Exception, cls: type[vc.FaultError]) -> None:
    world.app = create_wsgi_app(UseCases([BiosService(BrokenUow(exc), world.registry)]))
    with world.client() as client, pytest.raises(cls) as caught:
        client.get_attributes()
    if cls is vc.InternalError:
        assert caught.value.correlation_id
        assert "secret" not in caught.value.message


def test_version_mismatch(world: World) -> None:
    rewrite: Rewrite = lambda body: body.replace(SOAP11, SOAP12)  # noqa: E731
    with world.client(rewrite=rewrite) as client, pytest.raises(vc.VersionMismatch) as caught:
        client.get_attributes()
    assert caught.value.code == "VersionMismatch"


def _must_understand(body: bytes) -> bytes:
    header = (b'<soap-env:Header><x:Token xmlns:x="urn:example:unknown" '
              b'soap-env:mustUnderstand="1">t</x:Token></soap-env:Header>')
    return body.replace(b"<soap-env:Body>", header + b"<soap-env:Body>", 1)


def test_must_understand(world: World) -> None:
    with world.client(rewrite=_must_understand) as client, pytest.raises(vc.MustUnderstand):
        client.get_attributes()
    assert b"mustUnderstand" in world.adapter.bodies[0]


# -- answers that are not SOAP -----------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        (500, "text/plain", b"Internal Server Error"),
        (502, "text/html", b""),
        (200, "text/xml", b"<not-closed>"),
        (200, "text/xml", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>'),
    ],
)
def test_unreadable_answers_are_transport_errors(
    world: World, reply: tuple[int, str, bytes]
) -> None:
    with world.client(reply=lambda: reply) as client, pytest.raises(vc.TransportError) as caught:
        client.get_attributes()
    assert "boom" not in str(caught.value)


# -- arguments are checked before anything is sent ----------------------------------


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.set_attributes({}), ValueError),
        (lambda c: c.set_attributes({"A": 1.5}), TypeError),
        (lambda c: c.set_attributes({"A": None}), TypeError),
        (lambda c: c.set_attributes({"A": 1}, apply_time="Later"), ValueError),
        (lambda c: c.set_attributes({"A": 1}, expected_version="3"), TypeError),
        (lambda c: c.set_attributes({"A": 1}, expected_version=True), TypeError),
        (lambda c: c.set_attributes({"A": 1}, password=123), TypeError),
        (lambda c: c.get_attributes("BootTimeout"), TypeError),
        (lambda c: c.set_boot_order("Disk.Virtio.0"), TypeError),
        (lambda c: c.set_boot_order([""]), ValueError),
        (lambda c: c.set_boot_next(""), ValueError),
        (lambda c: c.change_password("", None, "x"), ValueError),
        (lambda c: c.change_password("SetupPassword", None, None), TypeError),
    ],
)
def test_bad_arguments_never_reach_the_wire(
    world: World, call: Callable[[vc.BiosClient], object], error: type[Exception]
) -> None:
    with world.client() as client:
        with pytest.raises(error):
            call(client)
        assert world.adapter.bodies == []


def test_constructor_checks(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="https"):
        vc.BiosClient("http://127.0.0.1:1/", tmp_path, tmp_path, tmp_path)
    with pytest.raises(ValueError, match="timeout"):
        vc.BiosClient("https://127.0.0.1:1/", tmp_path, tmp_path, tmp_path, timeout=0)
    with pytest.raises(ValueError, match="not a readable file"):
        vc.BiosClient("https://127.0.0.1:1/", tmp_path / "c", tmp_path / "k", tmp_path / "a")
    with pytest.raises(ValueError, match="not a directory"):
        vc.BiosClient.from_bundle("https://127.0.0.1:1/", tmp_path / "none")


def test_bundled_wsdl_is_the_published_contract() -> None:
    published = Path(__file__).resolve().parents[2] / "wsdl" / "vbios.wsdl"
    assert _contract.bundled_wsdl() == published.read_bytes()
