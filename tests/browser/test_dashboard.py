"""The dashboard in Chromium against one running local stack: sign-in, a spec and its lint, a run with its
growing loss curve, verdict and eval table, the playground, a dataset upload, API keys, the page weight."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser.conftest import RequestGuard, screenshot
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.slow
FIRST_LOAD_BUDGET_BYTES = 300_000
LEAD_SHOTS = Path("/tmp/dashboard_shots")
EXAMPLES = [
    {"input": f"What is the status of order {n}?", "output": f"Order {n} ships in {n % 5 + 1} days."}
    for n in range(101, 113)
]
# A short run: the tiny model, short eval answers (64 = the tokens an eval row keeps free). 12 epochs of 5
# steps last several of the stack's 1 s workflow polls even on a quiet machine (3 epochs could finish
# between two of them, so the page saw the curve only once, complete).
EPOCHS, EVAL_TOKENS, CHAT_TOKENS = "12", "64", "24"
RUN_TIMEOUT_MS = 150_000
shared: dict[str, str] = {}


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def test_first_load_is_small_and_the_stack_link_signs_in(
    page: Any, stack: RunningStack, guard: RequestGuard
) -> None:
    responses: list[Any] = []

    def record(response: Any) -> None:
        responses.append(response)

    page.on("response", record)
    page.goto(f"{stack.base_url}/#key={stack.api_key}", wait_until="networkidle")
    page.remove_listener("response", record)
    expect(page.get_by_role("heading", name="Behaviour specs")).to_be_visible()
    total = sum(len(response.body()) for response in responses if response.status != 204)
    print(f"first page load: {total} bytes in {len(responses)} responses")
    assert total <= FIRST_LOAD_BUDGET_BYTES
    # The key left the address bar, lives in sessionStorage, and no request ever carried it in its URL.
    assert "key=" not in page.url and page.url.endswith("#/specs")
    assert page.evaluate("sessionStorage.getItem('tt.api_key')") == stack.api_key
    assert not [url for url in guard.urls if stack.api_key in url]

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    page.get_by_label("API key").fill("tt_" + "x" * 48)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Missing or invalid API key")
    page.get_by_label("API key").fill(stack.api_key)
    page.keyboard.press("Enter")  # the form works from the keyboard
    expect(page.get_by_role("heading", name="Behaviour specs")).to_be_visible()
    expect(page.get_by_text("No behaviour specs yet")).to_be_visible()
    screenshot(page, "01-signed-in-empty-specs")


def test_create_a_spec_with_12_examples_and_see_its_lint(page: Any) -> None:
    page.get_by_role("link", name="New spec").click()
    page.get_by_label("Name", exact=True).fill("Order bot")
    page.get_by_label("System prompt").fill("You answer questions about orders.")
    page.get_by_label("Guidelines").fill("Answer with the shipping time.")
    page.get_by_label("Constraints").fill("Never reveal internal notes.\nAlways mention the order number.")
    page.get_by_label("Paste JSONL").fill("\n".join(json.dumps(example) for example in EXAMPLES))
    page.get_by_role("button", name="Add pasted rows").click()
    expect(page.get_by_text("Examples (12)")).to_be_visible()
    expect(page.get_by_label("Example 12 output")).to_have_value(EXAMPLES[11]["output"])
    page.get_by_role("button", name="Create spec").click()
    expect(page.get_by_role("heading", name="Order bot")).to_be_visible()
    shared["spec_url"] = page.url
    lint = page.locator("section.lint")
    expect(lint).to_contain_text("No constraint is broken by the examples.")
    expect(lint.get_by_role("table")).to_contain_text("Always mention the order number.")
    screenshot(page, "02-spec-with-lint")


def test_start_a_run_after_its_estimate_and_watch_the_curve_grow(page: Any) -> None:
    page.get_by_role("link", name="Start a run").first.click()
    expect(page.get_by_role("heading", name="Start a run")).to_be_visible()
    page.get_by_label("Epochs").fill(EPOCHS)
    page.get_by_label("Max output tokens (eval)").fill(EVAL_TOKENS)
    page.get_by_role("button", name="Estimate").click()
    estimate = page.get_by_role("region", name="Estimate")
    expect(estimate.get_by_label("Estimate")).to_contain_text("Training rows")
    expect(estimate).to_contain_text(f"n_epochs = {EPOCHS}")
    expect(estimate).to_contain_text("$0.00")
    page.get_by_role("button", name="Start run").click()
    expect(page.get_by_role("heading", name=re.compile(r"Order bot · run #1"))).to_be_visible()
    shared["run_url"] = page.url
    # Every point count the chart shows is recorded, so growth is seen even between two checks.
    page.evaluate(
        """() => {
          window.seenPoints = new Set();
          const record = () => document.querySelectorAll("figure.chart").forEach(
            (f) => window.seenPoints.add(Number(f.dataset.points)));
          const all = {subtree: true, childList: true, attributes: true};
          new MutationObserver(record).observe(document.body, all);
        }"""
    )
    page.wait_for_function(
        "() => [...window.seenPoints].filter((n) => n > 0).length >= 2", timeout=RUN_TIMEOUT_MS
    )
    expect(page.get_by_role("img", name=re.compile(r"Loss curve: \d+ points"))).to_be_visible()
    screenshot(page, "03-run-training")


def test_upload_a_dataset_with_one_bad_line_and_see_its_error(page: Any) -> None:
    rows = [json.dumps(example) for example in EXAMPLES[:3]]
    rows[1] = '{"input": "broken", "output": '
    page.get_by_role("link", name="Datasets").click()
    # Dropped on the zone as a file manager would (the file input is the keyboard's way in).
    page.locator(".dropzone").evaluate(
        """(zone, text) => {
          const files = new DataTransfer();
          files.items.add(new File([text], "orders.jsonl", {type: "application/jsonl"}));
          zone.dispatchEvent(new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true}));
        }""",
        "\n".join(rows) + "\n",
    )
    expect(page.get_by_label("Name", exact=True)).to_have_value("orders")
    page.get_by_role("button", name="Upload").click()
    result = page.locator("form.upload").get_by_role("alert")
    expect(result).to_contain_text("The file is invalid: 1 error", timeout=30_000)
    expect(result.get_by_role("row").nth(1)).to_contain_text("2")
    expect(result.get_by_role("row").nth(1)).to_contain_text("invalid_json")
    expect(page.get_by_label("Upload progress")).to_have_attribute("value", "100")
    expect(page.get_by_role("table", name="Datasets")).to_contain_text("orders")
    screenshot(page, "04-dataset-invalid-line")


def test_create_and_revoke_a_key_and_the_last_one_is_refused(page: Any) -> None:
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("New key name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator(".new-key")).to_contain_text("shown only once")
    assert re.fullmatch(r"tt_[0-9A-Za-z]{48}", page.locator(".new-key code").inner_text())
    table = page.get_by_role("table", name="API keys")
    row = table.get_by_role("row").filter(has_text="laptop")
    row.get_by_role("button", name="Revoke").click()
    row.get_by_role("button", name="Yes, revoke").click()
    expect(row).to_contain_text("revoked")
    # The dashboard's own key is now the only active one: the API refuses, the page says why.
    default = table.get_by_role("row").filter(has_text="active")
    default.get_by_role("button", name="Revoke").click()
    default.get_by_role("button", name="Yes, revoke").click()
    expect(page.get_by_role("alert")).to_contain_text("the account's only active API key")
    expect(default).to_contain_text("active")
    screenshot(page, "05-api-keys")


def test_the_run_completes_with_its_verdict_and_eval_table(page: Any, stack: RunningStack) -> None:
    page.goto(shared["run_url"])
    expect(page.get_by_role("heading", name=re.compile("^Verdict:"))).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_label("Run progress")).to_have_attribute("value", "100")
    cards = page.locator("section[aria-labelledby=verdict-title] dl.cards")
    expect(cards).to_contain_text("95% CI")
    table = page.get_by_role("table", name=re.compile("^Evaluation rows"))
    expect(table.get_by_role("row")).to_have_count(3)  # header + the 2 held-out examples (12 ÷ 5)
    expect(table.get_by_role("row").nth(0)).to_contain_text("Base output")
    page.get_by_label("Failures").check()
    page.get_by_label("Regressions").check()
    page.get_by_label("All rows").check()
    expect(page.get_by_role("link", name="details, download and playground")).to_be_visible()
    # Checkpoints (§9.10) show where the API lists them, and the section is hidden where it has no route.
    checkpoints = page.get_by_role("heading", name="Checkpoints")
    run_id = shared["run_url"].rsplit("/", 1)[1]
    listed = requests.get(
        f"{stack.base_url}/api/v1/runs/{run_id}/checkpoints",
        headers={"Authorization": f"Bearer {stack.api_key}"},
        timeout=10,
    )
    expect(checkpoints).to_have_count(1 if listed.status_code == 200 else 0)
    page.get_by_role("heading", name=re.compile("^Verdict:")).scroll_into_view_if_needed()
    path = screenshot(page, "06-run-completed")
    LEAD_SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, LEAD_SHOTS / "run-page.png")
    page.get_by_role("link", name="Report").click()
    expect(page.get_by_role("heading", name="Primary split", exact=True)).to_be_visible()


def test_compare_the_tuned_model_with_the_base_then_chat_with_it(page: Any) -> None:
    # Side by side first: its two requests load the models in the stack's two API workers at once.
    page.get_by_role("link", name="Playground").click()
    expect(page.get_by_label("Model", exact=True)).to_contain_text("tiny-chat-ft-")
    page.get_by_label("Max tokens").fill(CHAT_TOKENS)
    page.get_by_label("Temperature").fill("0")  # greedy: the tuned model repeats what it learned
    page.get_by_label("Side by side with the base model").check()
    page.get_by_label("Prompt for both models").fill(EXAMPLES[1]["input"])
    page.get_by_role("button", name="Compare").click()
    expect(page.locator(".compare .answer")).to_have_count(2, timeout=60_000)
    expect(page.get_by_role("region", name="Base: tunedtensor/tiny-chat")).to_be_visible()
    expect(page.get_by_role("region", name=re.compile("^Tuned: tiny-chat-ft-"))).to_be_visible()
    path = screenshot(page, "07-playground-side-by-side")
    LEAD_SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, LEAD_SHOTS / "playground.png")
    page.get_by_role("radio", name="Chat").check()
    page.get_by_label("Message").fill(EXAMPLES[0]["input"])
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".message.user")).to_have_text(re.compile("order 101"))
    expect(page.locator(".message.assistant")).to_have_count(1, timeout=60_000)
    screenshot(page, "08-playground-chat")


def test_pages_fit_a_phone_screen(page: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        base = shared["run_url"].split("#")[0]
        for url in [base + route for route in ("#/specs", "#/datasets", "#/playground", "#/keys")] + [
            shared["run_url"]
        ]:
            page.goto(url)
            expect(page.locator("main h1")).to_be_visible()
            # Wide tables scroll inside their own box; the page itself never scrolls sideways.
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, url
        screenshot(page, "09-phone-run-page")
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})
