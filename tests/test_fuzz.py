"""Hostile and careless input against the running studio: every refusal one clear line, naming the field,
with one log line and no traceback, and the app still serving afterwards.

The fast table covers each kind of mistake once per field family (gradio_client and raw HTTP); the
slow part throws random wrong values at every field of /imagine. The CLI's table is in test_cli.py.
"""

from __future__ import annotations

import logging
import random

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from test_studio import imagine_args

NEURON_LAYER = "model.vision_model.encoder.layers.0.mlp.fc1"


@pytest.fixture(scope="module")
def client(studio_server):
    url, _ = studio_server
    client = Client(url, verbose=False)
    yield client
    client.close()


def neuron_args(**overrides) -> dict:
    args = dict(model="clip", layer=NEURON_LAYER, channel=0, text="", weight=1.0, canvas="pixels", steps=2, size=32,
                seed=1, lock_seed=True)
    return {**args, **overrides}


def poem_args(**overrides) -> dict:
    args = dict(text="snow\nrain", model="clip", canvas="pixels", steps=2, size=32, seed=1, lock_seed=True, chain=False)
    return {**args, **overrides}


CASES = [  # (endpoint, fields changed from a valid call, the message the caller must read)
    ("/imagine", dict(steps="abc"), "steps must be a number from 0 to 1000, got 'abc'"),
    ("/imagine", dict(steps=None), "steps is empty: give a number from 0 to 1000"),
    ("/imagine", dict(steps="3"), "steps must be a number from 0 to 1000, got '3'"),
    ("/imagine", dict(steps=2.5), "steps must be a whole number, got 2.5"),
    ("/imagine", dict(steps=-1), "steps must be from 0 to 1000, got -1"),
    ("/imagine", dict(steps=10**9), "steps must be from 0 to 1000"),
    ("/imagine", dict(size="abc"), "size must be a number from 32 to 512, got 'abc'"),
    ("/imagine", dict(size=17), "size must be from 32 to 512, got 17"),
    ("/imagine", dict(size=4096), "size must be from 32 to 512, got 4096"),
    ("/imagine", dict(seed="abc"), "seed must be a number from 0 to 2147483647, got 'abc'"),
    ("/imagine", dict(seed=-1), "seed must be from 0 to 2147483647, got -1"),
    ("/imagine", dict(seed=2**64), "seed must be from 0 to 2147483647"),
    ("/imagine", dict(lr="abc"), "lr must be a number from 0.0 to 1.0, got 'abc'"),
    ("/imagine", dict(cutn=0), "cutn must be from 1 to 128, got 0"),
    ("/imagine", dict(tv_weight="nan"), "tv weight must be a number from 0.0 to 10.0, got 'nan'"),
    ("/imagine", dict(lock_seed="yes"), "lock seed must be true or false, got 'yes'"),
    ("/imagine", dict(until_plateau=1), "until plateau must be true or false, got 1"),
    ("/imagine", dict(model="gpt"), "unknown model 'gpt': choose one of auto, brivl, clip, both"),
    ("/imagine", dict(canvas="oil"), "unknown canvas 'oil'"),
    ("/imagine", dict(augmentations=["blur"]), "unknown augmentations 'blur'"),
    ("/imagine", dict(augmentations="flip"), "augmentations must be a list of flip, affine, perspective, noise"),
    ("/imagine", dict(prompt="\x00\x00"), "contains the control character '\\x00'"),
    ("/imagine", dict(prompt="a:0"), "every weight in 'a:0' is 0: nothing to imagine"),
    ("/imagine", dict(prompt="a:1e308|b:1e308"), "must be a number from -100 to 100"),
    ("/imagine", dict(prompt=123), "prompt must be text, got 123"),
    ("/imagine", dict(prompt="x" * 501), "the prompt has 501 characters: at most 500"),
    ("/imagine", dict(init_image="/etc/passwd"), "init image must be an uploaded file (gradio_client: handle_file"),
    ("/poem", dict(chain="yes"), "chain must be true or false, got 'yes'"),
    ("/poem", dict(text="\n \n"), "the poem is empty"),
    ("/neuron", dict(text="snow:abc"), "weight 'abc' in 'snow:abc' is not a number"),
    ("/neuron", dict(channel=1.5), "channel must be a whole number, got 1.5"),
    ("/neuron", dict(channel="abc"), "channel must be a number from 0 to"),
    ("/neuron", dict(channel=99999), "channel must be from 0 to"),
    ("/neuron", dict(weight="nan"), "weight must be a number from -10.0 to 10.0, got 'nan'"),
]
VALID = {"/imagine": lambda **o: imagine_args(**{"steps": 2, **o}), "/poem": poem_args, "/neuron": neuron_args}


def assert_refused_cleanly(message: str, caught, capfd, caplog, expected: str):
    assert expected in message, message
    assert "\n" not in message and "upstream Gradio app" not in message
    refusals = [r for r in caplog.records if r.name == "studio" and r.getMessage().startswith("refused")]
    assert len(refusals) == 1 and expected in refusals[0].getMessage()  # one log line per refused request
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("endpoint, change, expected", CASES, ids=[f"{c[0]}-{next(iter(c[1]))}" for c in CASES])
def test_a_bad_value_is_refused_in_one_line_naming_the_field(client, endpoint, change, expected, capfd, caplog):
    caplog.set_level(logging.INFO, logger="studio")
    with pytest.raises(AppError) as caught:
        client.predict(**VALID[endpoint](**change), api_name=endpoint)
    assert_refused_cleanly(str(caught.value), caught, capfd, caplog, expected)


def raw_call(url: str, client: Client, endpoint: str, **change) -> str:
    """POST to /gradio_api/call/... as a script without gradio_client would, every field filled in."""
    params = client.view_api(return_format="dict", print_info=False)["named_endpoints"][endpoint]["parameters"]
    args = {**VALID[endpoint](), **change}
    data = [args.get(p["parameter_name"], p.get("parameter_default")) for p in params]
    name = endpoint.strip("/")
    event = httpx.post(f"{url}gradio_api/call/{name}", json={"data": data}).json()["event_id"]
    return httpx.get(f"{url}gradio_api/call/{name}/{event}", timeout=60).text


@pytest.mark.parametrize("path", ["/etc/passwd", "app.py", "../../../etc/passwd"])
def test_a_server_path_dressed_as_an_upload_is_refused_readably(studio_server, client, path, capfd, caplog):
    caplog.set_level(logging.INFO, logger="studio")
    url, _ = studio_server
    stream = raw_call(url, client, "/imagine", init_image={"path": path, "meta": {"_type": "gradio.FileData"}})
    assert "event: error" in stream and '"error": null' not in stream
    assert "was not uploaded by a user" in stream and "root:" not in stream  # the file's content never comes back
    assert_refused_cleanly(stream.split("event: error", 1)[1].splitlines()[1], None, capfd, caplog,
                           "was not uploaded by a user")


def test_raw_http_with_a_wrong_type_gets_the_same_message(studio_server, client, capfd, caplog):
    caplog.set_level(logging.INFO, logger="studio")
    url, _ = studio_server
    stream = raw_call(url, client, "/imagine", steps="abc")
    assert "steps must be a number from 0 to 1000, got 'abc'" in stream
    assert "Traceback" not in capfd.readouterr().err


def test_the_studio_still_serves_after_the_refusals(studio_server, client):
    url, _ = studio_server
    assert httpx.get(url).status_code == 200
    _, status, *_ = client.predict(**VALID["/imagine"](), api_name="/imagine")
    assert status.startswith("done · 2 steps")


WRONG_VALUES = [None, "", "abc", "3", -1, 0, 2.5, 10**12, float("nan"), True, [], {}, ["x"], {"path": "/etc/passwd"},
                "\x00", "x" * 2000]


@pytest.mark.slow
def test_random_wrong_values_in_every_field_are_refused_cleanly_or_run(client, capfd, caplog):
    """200 calls, each with 1-3 fields of /imagine set to a random wrong-looking value: whatever is not
    accepted comes back as one line (no generic 'upstream' error), with no traceback in the log."""
    caplog.set_level(logging.INFO, logger="studio")
    params = [p["parameter_name"] for p in
              client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/imagine"]["parameters"]]
    rng = random.Random(0)
    refused = ran = 0
    for _ in range(200):
        change = {name: rng.choice(WRONG_VALUES) for name in rng.sample(params, rng.randint(1, 3))}
        try:
            client.predict(**imagine_args(**{"steps": 1, "size": 32, "cutn": 1, **change}), api_name="/imagine")
            ran += 1
        except AppError as error:
            message = str(error)
            assert message and "\n" not in message and "upstream Gradio app" not in message, (change, message)
            refused += 1
        except (ValueError, TypeError):  # gradio_client itself refuses some values before sending them
            refused += 1
    assert "Traceback" not in capfd.readouterr().err
    assert refused > 150  # nearly every combination is wrong somewhere
