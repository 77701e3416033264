// `html`: a tagged template that escapes what it interpolates, unless it is HTML already (the
// result of another `html` template). Views build their markup with it, so a team or player
// name can never become markup; arrays are joined, and null, undefined and false are left out.
//
//   html`<li title="${name}">${goals.map((g) => html`<b>${g.minute}</b>`)}</li>`

class Html {
  constructor(text) { this.text = text; }
  toString() { return this.text; }
}

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export const escape = (text) => String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);

const piece = (value) => {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(piece).join('');
  if (value === null || value === undefined || value === false) return '';
  return escape(value);
};

export function html(strings, ...values) {
  let text = strings[0];
  values.forEach((value, i) => { text += piece(value) + strings[i + 1]; });
  return new Html(text);
}

// Markup that is known to be safe (built here from numbers and constants), taken as it is.
export const trusted = (text) => new Html(String(text));

// Replaces an element's content with `markup`, an `html` result.
export function render(element, markup) {
  element.innerHTML = piece(markup);
}
