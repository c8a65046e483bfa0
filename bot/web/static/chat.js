// The web chat with JavaScript: the same forms as without it, sent without reloading the page.
// The server answers with the HTML of the new replies and of the next step's controls (the
// very templates of the page), so both ways show the same thing. Each message keeps its client
// id across retries: a double click or a retried request is applied once.
// No third-party code; loaded as a module (strict CSP: no inline script).

const answerForm = document.getElementById("reponse");
const menuForm = document.getElementById("menu");
const thread = document.getElementById("fil");
const problemBox = document.getElementById("probleme");

let busy = false;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function showProblem(text) {
  problemBox.textContent = "";
  if (!text) return;
  const alert = document.createElement("div");
  alert.className = "fr-alert fr-alert--error fr-mb-3w";
  alert.setAttribute("role", "alert");
  const p = document.createElement("p");
  p.textContent = text;
  alert.appendChild(p);
  problemBox.appendChild(alert);
}

function said(form, submitter) {
  // What the citizen sent, as they see it: the pressed button's label or their text.
  if (submitter && submitter.name !== "send") return submitter.textContent.trim();
  const box = form.querySelector("textarea[name=text]");
  return box ? box.value.trim() : "";
}

function appendMine(text) {
  if (!text) return;
  const li = document.createElement("li");
  li.className = "chat__msg chat__msg--me";
  const who = document.createElement("span");
  who.className = "fr-sr-only";
  who.textContent = answerForm.dataset.you || "";
  li.appendChild(who);
  const p = document.createElement("p");
  p.textContent = text;
  li.appendChild(p);
  thread.appendChild(li);
}

function setBusy(on) {
  busy = on;
  for (const form of [answerForm, menuForm]) {
    form.setAttribute("aria-busy", on ? "true" : "false");
    for (const button of form.querySelectorAll("button")) button.disabled = on;
  }
}

function apply(body) {
  if (body.status === "ok" && body.lang && body.lang !== document.documentElement.lang) {
    // Another language: the title, the menu and every label of the page are still in the
    // old one (and would be read out as the new one). The page again, in the new language.
    window.location.assign("/");
    return;
  }
  if (body.messages) thread.insertAdjacentHTML("beforeend", body.messages);
  if (typeof body.answer === "string") answerForm.innerHTML = body.answer;
  for (const [name, value] of [
    ["mid", body.menu_id],
    ["v", body.version],
    ["state", body.state],
  ]) {
    const field = menuForm.querySelector(`input[name=${name}]`);
    if (field && value !== undefined) field.value = String(value);
  }
  showProblem(body.problem || "");
  const firsts = thread.querySelectorAll("[data-first]");
  const first = firsts[firsts.length - 1];
  for (const el of firsts) el.removeAttribute("data-first");
  if (body.problem) {
    problemBox.querySelector("[role=alert]")?.setAttribute("tabindex", "-1");
    problemBox.querySelector("[role=alert]")?.focus();
  } else if (first) {
    first.focus(); // screen readers read the new reply; the page scrolls to it
  }
}

function proxyProblem(response) {
  // What an HTML answer of the reverse proxy means, said as the chat says it.
  const texts = answerForm.dataset;
  if (response.status === 413) return texts.tooLarge || texts.offline;
  if (response.status === 429) {
    const wait = parseInt(response.headers.get("Retry-After") || "", 10);
    const seconds = Number.isFinite(wait) && wait > 0 ? wait : 60;
    return (texts.tooMany || texts.offline).replace("{seconds}", String(seconds));
  }
  if (response.status >= 500) return texts.unavailable || texts.offline;
  return texts.offline;
}

async function proofFor(form, data) {
  const widget = form.querySelector("altcha-widget");
  if (!widget || typeof widget.verify !== "function") return;
  try {
    const result = await widget.verify();
    if (result && result.payload) data.set("altcha", result.payload);
  } catch (error) {
    // no proof: the server applies its stricter limit instead
  }
}

async function send(form, submitter) {
  if (busy) return;
  // Busy before anything is awaited (the proof takes a moment): a second click does nothing.
  setBusy(true);
  try {
    const data = new FormData(form);
    if (submitter && submitter.name) data.set(submitter.name, submitter.value);
    if (submitter && submitter.name === "choice" && submitter.value === "send") {
      await proofFor(form, data);
    }
    const mine = said(form, submitter);
    const sending = form.dataset.sending || "";
    if (sending) problemBox.textContent = "";
    for (let attempt = 0; attempt < 4; attempt += 1) {
      let response;
      try {
        response = await fetch(form.action, {
          method: "POST",
          body: new URLSearchParams(data),
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
      } catch (error) {
        await sleep(400 * 2 ** attempt); // the network: retried with the same message id
        continue;
      }
      const type = response.headers.get("content-type") || "";
      if (!type.includes("application/json")) {
        // an answer of the reverse proxy (too many requests, too large, unavailable)
        showProblem(proxyProblem(response));
        return;
      }
      const body = await response.json();
      if (body.status === "ok") appendMine(mine);
      apply(body);
      return;
    }
    showProblem(answerForm.dataset.offline);
  } finally {
    setBusy(false);
  }
}

for (const form of [answerForm, menuForm]) {
  if (!form) continue;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(form, event.submitter);
  });
}
