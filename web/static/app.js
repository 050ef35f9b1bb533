// The explorer page: every panel calls one /api route and shows its JSON. The URL hash holds
// the query (#q=frog&k=20, and for a sentence store &mode=hybrid&where=...) so a view can be
// shared and reloaded.
"use strict";
const $ = (id) => document.getElementById(id);
let points = [];
let sentences = false;  // the store holds sentences: search texts, no map, no analogies
let fields = {};  // {name: type} of the fields a sentence store keeps with its texts

async function api(route, params) {
  const response = await fetch(`/api/${route}?` + new URLSearchParams(params));
  const body = await response.json();
  if (!response.ok) throw body;
  return body;
}

function showError(target, error) {
  target.hidden = false;
  target.textContent = error.error || String(error);
  for (const word of error.suggestions || []) {
    const link = document.createElement("a");
    link.textContent = word;
    link.className = "suggestion";
    link.onclick = () => go(word);
    target.append(" ", link);
  }
}

function go(q, k) {
  const params = new URLSearchParams({ q, k: k || $("k").value || 20 });
  if (sentences) {
    if ($("mode").value !== "vector") params.set("mode", $("mode").value);
    if ($("where").value.trim()) params.set("where", $("where").value.trim());
  }
  if (location.hash.slice(1) === params.toString()) render();
  else location.hash = params.toString();
}

async function render() {
  const params = new URLSearchParams(location.hash.slice(1));
  const q = params.get("q");
  if (!q) return;
  $("q").value = q;
  if (params.get("k")) $("k").value = params.get("k");
  const k = $("k").value;
  const mode = params.get("mode") || "vector", where = params.get("where") || "";
  $("mode").value = mode;
  $("where").value = where;
  $("message").hidden = true;
  $("neighbors").innerHTML = "";
  $("oov").hidden = true;
  try {
    // a sentence store answers any text through /api/search; a word store draws the map too
    const search = { q, k, mode };
    if (where) search.where = where;
    const [answers, map] = sentences ? [await api("search", search), { points: [] }]
      : await Promise.all([api("neighbors", { q, k }), api("map", { q, k })]);
    if (answers.length && answers[0].oov) {  // a fastText store answered a word it does not hold
      $("oov").textContent = `${answers[0].oov_words.join(", ")}: not in the vocabulary, answered from its subwords`;
      $("oov").hidden = false;
    }
    for (const answer of answers) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.textContent = answer.word ?? answer.text;
      link.onclick = () => go(link.textContent);
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = answer.score.toFixed(4);
      item.append(link, score);
      if (answer.lists) {  // keyword and hybrid modes: which lists found it
        const lists = document.createElement("span");
        lists.className = "lists";
        lists.textContent = answer.lists.join(" + ");
        item.append(lists);
      }
      const kept = Object.keys(fields).filter((name) => name in answer);
      if (kept.length) {
        const tags = document.createElement("span");
        tags.className = "fields";
        tags.textContent = kept.map((name) => `${name}: ${answer[name]}`).join(" · ");
        item.append(tags);
      }
      $("neighbors").append(item);
    }
    points = map.points;
    draw(null);
    document.body.dataset.query = q;
  } catch (error) {
    showError($("message"), error);
    points = [];
    draw(null);
  }
}

function place(point, canvas) {
  const pad = 40;
  return [pad + (point.x + 1) / 2 * (canvas.width - 2 * pad), pad + (1 - point.y) / 2 * (canvas.height - 2 * pad)];
}

function draw(hovered) {
  const canvas = $("map"), g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  g.font = "13px system-ui, sans-serif";
  for (const point of points) {
    const [x, y] = place(point, canvas);
    g.fillStyle = point.query ? "#c0392b" : point === hovered ? "#1a4fa0" : "#5b7db1";
    g.beginPath();
    g.arc(x, y, point.query ? 6 : 4, 0, 2 * Math.PI);
    g.fill();
    if (point.query || point === hovered || points.length <= 40) {
      g.fillStyle = point === hovered ? "#000" : "#333";
      g.fillText(point.word, x + 7, y - 5);
    }
  }
}

function pointAt(event) {
  const canvas = $("map"), box = canvas.getBoundingClientRect();
  const mx = (event.clientX - box.left) * canvas.width / box.width;
  const my = (event.clientY - box.top) * canvas.height / box.height;
  let best = null, bestDistance = 12 * 12;
  for (const point of points) {
    const [x, y] = place(point, canvas);
    const distance = (x - mx) ** 2 + (y - my) ** 2;
    if (distance < bestDistance) { best = point; bestDistance = distance; }
  }
  return best;
}

$("map").addEventListener("mousemove", (event) => {
  const point = pointAt(event);
  $("map").style.cursor = point ? "pointer" : "default";
  $("map").title = point ? `${point.word} (${point.score.toFixed(3)})` : "";
  draw(point);
});
$("map").addEventListener("click", (event) => {
  const point = pointAt(event);
  if (point && !point.query) go(point.word);
});

let suggestTimer = null;
$("q").addEventListener("input", () => {
  clearTimeout(suggestTimer);
  const prefix = $("q").value.trim();
  if (sentences || !prefix || prefix.includes(" ")) return;
  suggestTimer = setTimeout(async () => {
    try {
      const found = await api("suggest", { prefix, k: 10 });
      $("suggestions").innerHTML = "";
      for (const word of found.words) {
        const option = document.createElement("option");
        option.value = word;
        $("suggestions").append(option);
      }
    } catch (error) { /* suggestions are a convenience */ }
  }, 120);
});

$("field").addEventListener("change", () => {  // the field chooser starts a test on the chosen field
  const name = $("field").value;
  if (!name) return;
  const where = $("where").value.trim();
  $("where").value = (where ? `${where} AND ` : "") + `${name} ${fields[name] === "text" ? "= ''" : "= "}`;
  $("field").value = "";
  $("where").focus();
});
$("mode").addEventListener("change", () => { if ($("q").value.trim()) go($("q").value.trim()); });

$("query-form").addEventListener("submit", (event) => { event.preventDefault(); go($("q").value.trim()); });

$("analogy-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const list = $("analogy-answers");
  list.innerHTML = "";
  try {
    const answers = await api("analogy", { a: $("a").value, b: $("b").value, c: $("c").value, method: $("method").value, k: 5 });
    for (const answer of answers) {
      const item = document.createElement("li");
      item.innerHTML = "<a></a><span class=score></span>";
      item.firstChild.textContent = answer.word;
      item.firstChild.onclick = () => go(answer.word);
      item.lastChild.textContent = answer.score.toFixed(4);
      list.append(item);
    }
  } catch (error) {
    const item = document.createElement("li");
    item.className = "error";
    showError(item, error);
    list.append(item);
  }
});

$("similarity-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const target = $("similarity-answer");
  target.className = "";
  try {
    const result = await api("similarity", { a: $("s1").value, b: $("s2").value });
    target.textContent = `cosine ${result.score.toFixed(4)}`;
  } catch (error) {
    target.className = "error";
    showError(target, error);
  }
});

window.addEventListener("hashchange", render);
api("info", {}).then((info) => {
  const version = info.versions.find((v) => v.version === info.current);
  $("served").textContent = `serving ${info.served}` + (version ? ` · v${version.version}, ${version.count.toLocaleString()} × ${version.dim} ${version.kind}` : "");
  sentences = Boolean(version && version.kind === "sentences");
  if (sentences) {
    document.body.classList.add("sentences");
    $("q").placeholder = "a gripping thriller";
    $("query-form").querySelector("label").textContent = "Search the stored texts";
    $("query-form").querySelector("button").textContent = "Search";
    fields = info.fields || {};
    for (const [name, type] of Object.entries(fields)) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = `${name} (${type})`;
      $("field").append(option);
    }
    $("field").hidden = !Object.keys(fields).length;
    $("where").hidden = !Object.keys(fields).length;
  }
}).catch(() => {}).finally(render);
