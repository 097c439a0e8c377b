"""What the request path keeps between calls stays bounded, however many distinct calls come
(a server's resident size must not grow with the number of calls it served)."""

from __future__ import annotations

from bios_ws.domain.state import DomainState
from bios_ws.soap import codec, encoder
from bios_ws.soap.testing import build_endpoint
from bios_ws.store.codec import DecodedStates, encode_state


def test_rendered_values_and_escaped_texts_stay_bounded() -> None:
    endpoint = build_endpoint()
    for n in range(codec._RENDERED_VALUES_KEPT + 50):
        inner = ("<tns:Attributes><tns:AttributeValue><tns:Name>AssetTag</tns:Name>"
                 f"<tns:StringValue>tag {n}</tns:StringValue></tns:AttributeValue>"
                 "</tns:Attributes><tns:ApplyTime>Immediate</tns:ApplyTime>")
        assert endpoint.call("SetAttributes", inner).status == 200
        assert endpoint.call("GetAttributes").status == 200
    assert 0 < len(codec._rendered_values) <= codec._RENDERED_VALUES_KEPT
    info = encoder._escape_short.cache_info()
    assert info.maxsize is not None and info.currsize <= info.maxsize


def test_decoded_states_keep_at_most_their_capacity() -> None:
    states = DecodedStates(capacity=4)
    for n in range(20):
        state = DomainState(f"d{n}", 1, {"A": n})
        assert states.decode(state.domain_id, 1, encode_state(state)) == state
        assert len(states._entries) <= 4
