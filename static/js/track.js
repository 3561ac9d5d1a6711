// The quick controls beside each title: change a status in place, without reloading the page. Without this
// script the same forms post and the page comes back with a message.
"use strict";

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form.track");
  if (!form) return;
  event.preventDefault();
  const said = form.querySelector(".track-said");
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    const answer = await response.json();
    if (response.ok) {
      said.textContent = answer.said;
      const empty = form.querySelector('option[value=""]');
      if (empty) empty.remove();
      button.textContent = "Save";
    } else {
      said.textContent = Object.values(answer.errors).flat().map((e) => e.message || e).join(" ");
    }
  } catch {
    said.textContent = "Not saved: the connection failed. Try again.";
  } finally {
    button.disabled = false;
  }
});

document.addEventListener("change", (event) => {
  const select = event.target.closest("form.track select");
  if (select && select.value) select.form.requestSubmit();
});
