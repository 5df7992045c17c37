// A counted, paged table of a Graph list, shared by the manifests,
// collections and packages views: "Next page" follows @odata.nextLink,
// "Previous page" goes back to a page already seen.

import { h, fill, errorBox, loading, announce } from './dom.js';
import { call } from './graph.js';

/**
 * Fills `results` with the list at `first` ({target, eventual}).
 * `columns` are [heading, class] pairs and `row(item)` the cells of one
 * item; `noun` is [one, many]; `empty` what to say when nothing is there.
 * `countId` names the count's element (`{id}-count` by default); `nextOf`
 * finds the next page's link in an answer (Graph's `@odata.nextLink` by
 * default; the control plane's lists say `nextLink`).
 */
export function pagedList(results, {
  alive, first, id, noun, columns, row, empty, failed,
  countId = `${id}-count`, nextOf = (json) => json['@odata.nextLink'],
}) {
  const pages = [];
  async function load(page, number) {
    results.setAttribute('aria-busy', 'true');
    fill(results, loading(`Loading ${noun[1]}…`));
    let json;
    try {
      ({ json } = await call('GET', page.target, { eventual: page.eventual }));
    } catch (error) {
      if (!alive()) return;
      results.setAttribute('aria-busy', 'false');
      fill(results, errorBox(error, failed));
      return;
    }
    if (!alive()) return;
    results.setAttribute('aria-busy', 'false');
    pages[number - 1] = page;
    const items = json.value ?? [];
    const total = json['@odata.count'];
    const countText = typeof total === 'number'
      ? `${total} ${total === 1 ? noun[0] : noun[1]}`
      : `${items.length} on this page`;
    announce(`${countText} found.`);
    if (items.length === 0) {
      fill(results, h('p', { class: 'count' }, h('span', { id: countId }, countText)),
        h('p', { class: 'muted', id: 'empty' }, empty));
      return;
    }
    const next = nextOf(json);
    const previous = h('button', { type: 'button', id: 'previous-page', disabled: number === 1 }, 'Previous page');
    previous.addEventListener('click', () => load(pages[number - 2], number - 1));
    const nextButton = h('button', { type: 'button', id: 'next-page', disabled: !next }, 'Next page');
    nextButton.addEventListener('click', () => load({ target: next, eventual: page.eventual }, number + 1));
    fill(results,
      h('p', { class: 'count' }, h('span', { id: countId }, countText)),
      h('div', { class: 'table-wrap' },
        h('table', { id },
          h('caption', { class: 'visually-hidden' }, `${noun[1]}, page ${number}`),
          h('thead', null, h('tr', null, columns.map(([text, cls]) => h('th', { scope: 'col', class: cls }, text)))),
          h('tbody', null, items.map((item) => h('tr', null, row(item)))))),
      h('nav', { class: 'pager', 'aria-label': 'Pages' },
        previous, h('span', { id: 'page-number' }, `Page ${number}`), nextButton));
  }
  load(first, 1);
  return { reload: () => load(first, 1) };
}

/** A name cell: a link to the item's view and its id under it. */
export function nameCell(href, name, id) {
  return h('td', { class: 'name' }, h('a', { href }, name || id), h('span', { class: 'id' }, id));
}

/** `"word" AND "other"`: each word must start a word of the name. */
export function searchExpression(text) {
  const words = text.split(/\s+/).map((w) => w.replace(/["\\]/g, '')).filter(Boolean).slice(0, 16);
  return words.map((w) => `"${w}"`).join(' AND ');
}

/** A string literal for $filter. */
export function literal(text) {
  return `'${String(text).replace(/'/g, "''")}'`;
}

/** A labelled <select> of [value, text] choices. */
export function select(id, label, choices, value) {
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('select', { id, name: id },
      choices.map(([v, text]) => h('option', { value: v, selected: String(v) === String(value) }, text))));
}

/** A labelled text field. */
export function textField(id, label, value, attrs) {
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('input', { id, name: id, value: value ?? '', autocomplete: 'off', ...attrs }));
}
