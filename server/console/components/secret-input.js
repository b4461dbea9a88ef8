// secret-input.js - <coffer-secret-input>: a text field in which typing "{" opens a list of the
// host page's variables and the project's secret names (never values), as the product's tools
// do. Choosing a secret inserts {secret.NAME}; "Create Secret" at the bottom asks the host to
// make one (the event "coffer-create-secret", whose detail.insert(name) puts the new name in).
// Usable by any web application of the same origin as cofferd's console:
//
//   <script type="module" src="/components/secret-input.js"></script>
//   <coffer-secret-input label="Tool input"></coffer-secret-input>
//   el.variables = ["user.email"];                     // the "Variables" tab
//   el.secretNames = async () => ["OPENAI_API_KEY"];   // the "Secrets" tab (names only)
//
// The list is a listbox of role=option items: arrows move, Enter chooses, Escape closes.
const sheet = new CSSStyleSheet();
sheet.replaceSync(`
  :host { display: block; position: relative; font: inherit; }
  label { display: block; font-weight: 600; margin-bottom: .3rem; }
  textarea { font: inherit; width: 100%; box-sizing: border-box; min-height: 4rem; padding: .45rem;
    border: 1px solid #d7dce2; border-radius: 6px; }
  .pop { position: absolute; left: 0; right: 0; z-index: 10; background: #fff; border: 1px solid #d7dce2;
    border-radius: 8px; box-shadow: 0 6px 24px rgba(0,0,0,.12); margin-top: .2rem; }
  .pop[hidden] { display: none; }
  [role=tablist] { display: flex; border-bottom: 1px solid #d7dce2; }
  [role=tab] { font: inherit; flex: 1; padding: .4rem; border: 0; background: none; cursor: pointer; }
  [role=tab][aria-selected=true] { font-weight: 600; border-bottom: 2px solid #1f4b99; }
  [role=listbox] { list-style: none; margin: 0; padding: .2rem 0; max-height: 14rem; overflow: auto; }
  [role=option] { padding: .35rem .7rem; cursor: pointer; font-family: ui-monospace, monospace; }
  [role=option][aria-selected=true] { background: #e8eefb; }
  .empty { padding: .35rem .7rem; color: #5b6470; }
  .create { font: inherit; width: 100%; padding: .5rem; border: 0; border-top: 1px solid #d7dce2;
    background: #f4f6f8; cursor: pointer; text-align: left; }
`);

let counter = 0;

class CofferSecretInput extends HTMLElement {
  constructor() {
    super();
    this.variables = [];
    this.secretNames = async () => [];
    this._tab = "secrets";
    this._names = [];
    this._active = 0;
    this._start = -1; // where the "{" that opened the list is
    const id = `coffer-secret-input-${++counter}`;
    const root = this.attachShadow({ mode: "open" });
    root.adoptedStyleSheets = [sheet];
    this._label = document.createElement("label");
    this._label.htmlFor = `${id}-field`;
    this._field = document.createElement("textarea");
    this._field.id = `${id}-field`;
    this._field.setAttribute("aria-autocomplete", "list");
    this._field.setAttribute("aria-controls", `${id}-list`);
    this._pop = document.createElement("div");
    this._pop.className = "pop";
    this._pop.hidden = true;
    const tabs = document.createElement("div");
    tabs.setAttribute("role", "tablist");
    this._tabs = {};
    for (const [key, text] of [["variables", "Variables"], ["secrets", "Secrets"]]) {
      const t = document.createElement("button");
      t.type = "button";
      t.setAttribute("role", "tab");
      t.textContent = text;
      t.addEventListener("mousedown", (e) => e.preventDefault());
      t.addEventListener("click", () => { this._tab = key; this._render(); this._field.focus(); });
      tabs.append(t);
      this._tabs[key] = t;
    }
    this._list = document.createElement("ul");
    this._list.id = `${id}-list`;
    this._list.setAttribute("role", "listbox");
    const create = document.createElement("button");
    create.type = "button";
    create.className = "create";
    create.textContent = "Create Secret";
    create.addEventListener("mousedown", (e) => e.preventDefault());
    create.addEventListener("click", () => this._create());
    this._pop.append(tabs, this._list, create);
    root.append(this._label, this._field, this._pop);
    this._field.addEventListener("input", () => this._changed());
    this._field.addEventListener("keydown", (e) => this._key(e));
    this._field.addEventListener("blur", () => this.close());
  }

  static get observedAttributes() { return ["label"]; }
  attributeChangedCallback() { this._label.textContent = this.getAttribute("label") || ""; }
  connectedCallback() { this.attributeChangedCallback(); }

  get value() { return this._field.value; }
  set value(v) { this._field.value = v; }

  close() {
    this._start = -1;
    this._pop.hidden = true;
    this._field.removeAttribute("aria-activedescendant");
  }

  // What follows the "{" that opened the list, up to the caret: the filter.
  _filter() {
    return this._start < 0 ? "" : this._field.value.slice(this._start + 1, this._field.selectionStart);
  }

  async _changed() {
    const caret = this._field.selectionStart;
    const typed = this._field.value.slice(0, caret);
    if (this._start < 0 && typed.endsWith("{")) {
      this._start = caret - 1;
      this._tab = "secrets";
      this._pop.hidden = false;
      try { this._names = await this.secretNames(); } catch { this._names = []; }
    } else if (this._start >= 0 && (caret <= this._start || /[\s}]/.test(this._filter()))) {
      this.close();
      return;
    }
    this._active = 0;
    this._render();
  }

  _items() {
    const f = this._filter().replace(/^secret\./, "").toLowerCase();
    const all = this._tab === "secrets" ? this._names : this.variables;
    return all.filter((n) => n.toLowerCase().includes(f));
  }

  _render() {
    if (this._start < 0) return;
    for (const [key, t] of Object.entries(this._tabs)) t.setAttribute("aria-selected", String(key === this._tab));
    const items = this._items();
    this._list.setAttribute("aria-label", this._tab === "secrets" ? "Secrets" : "Variables");
    this._list.replaceChildren(...items.map((name, i) => {
      const li = document.createElement("li");
      li.id = `${this._list.id}-${i}`;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(i === this._active));
      li.textContent = name;
      li.addEventListener("mousedown", (e) => e.preventDefault());
      li.addEventListener("click", () => this._choose(name));
      return li;
    }));
    if (items.length === 0) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = this._tab === "secrets" ? "No secret matches" : "No variables";
      this._list.append(li);
      this._field.removeAttribute("aria-activedescendant");
    } else {
      this._field.setAttribute("aria-activedescendant", `${this._list.id}-${this._active}`);
    }
  }

  _key(e) {
    if (this._start < 0) return;
    const n = this._items().length;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (n) this._active = (this._active + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
      this._render();
    } else if (e.key === "Enter" && n) {
      e.preventDefault();
      this._choose(this._items()[this._active]);
    } else if (e.key === "Escape") {
      e.preventDefault();
      this.close();
    }
  }

  // Replaces "{" and the filter with the reference to name.
  _choose(name, end = this._field.selectionStart) {
    const ref = this._tab === "secrets" ? `{secret.${name}}` : `{${name}}`;
    const v = this._field.value;
    this._field.value = v.slice(0, this._start) + ref + v.slice(end);
    const at = this._start + ref.length;
    this.close();
    this._field.setSelectionRange(at, at);
    this._field.focus();
    this.dispatchEvent(new Event("change", { bubbles: true }));
  }

  _create() {
    // where the reference goes: the host's dialog takes the focus (and the caret) meanwhile
    const start = this._start, end = this._field.selectionStart;
    this.dispatchEvent(new CustomEvent("coffer-create-secret", {
      bubbles: true,
      detail: {
        insert: (name) => {
          this._start = start;
          this._tab = "secrets";
          this._choose(name, end);
        },
      },
    }));
  }
}

if (!customElements.get("coffer-secret-input")) customElements.define("coffer-secret-input", CofferSecretInput);
export { CofferSecretInput };
