// Building the page without HTML strings: what the registry holds is only
// ever set as text, never parsed as markup.

/** An element: h('a', {href: '#/agents'}, 'Agents'). `on…` attributes add listeners. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      el.className = value;
    } else if (value === true) {
      el.setAttribute(name, '');
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces what `el` holds. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Says `text` to screen readers, politely. */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  // A new text node after a tick, so that the same words are said again.
  setTimeout(() => { region.textContent = text; }, 50);
}

/** A date-time as the reader's locale writes it, and the ISO text as its title. */
export function when(iso) {
  if (!iso) return h('span', { class: 'muted' }, 'never');
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h('span', null, iso);
  return h('time', { datetime: iso, title: iso }, date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }));
}

/** A value, or a muted dash when there is none. */
export function orNone(value) {
  if (value === undefined || value === null || value === '' ||
      (Array.isArray(value) && value.length === 0)) {
    return h('span', { class: 'muted' }, '—');
  }
  return Array.isArray(value) ? value.join(', ') : String(value);
}

/** A definition list of [term, value] pairs. */
export function facts(pairs, attrs) {
  return h('dl', { class: 'facts', ...attrs },
    pairs.map(([term, value]) => [h('dt', null, term), h('dd', null, value)]));
}

/**
 * A Graph error, shown whole: its message, code, request id and date, as
 * the error envelope gives them (`error.innerError.request-id`).
 */
export function errorBox(error, title = 'The request failed', extra) {
  const details = [];
  if (error.status) details.push(['Status', String(error.status)]);
  if (error.code) details.push(['Code', error.innerCode ? `${error.code} (${error.innerCode})` : error.code]);
  if (error.requestId) details.push(['Request id', h('code', { class: 'request-id' }, error.requestId)]);
  if (error.date) details.push(['Date', error.date]);
  return h('div', { class: 'alert', role: 'alert' },
    h('p', { class: 'title' }, title),
    h('p', { class: 'message' }, error.message || 'No message.'),
    details.length ? h('dl', null, details.map(([t, v]) => [h('dt', null, t), h('dd', null, v)])) : null,
    extra);
}

/** A line that says something is on its way. */
export function loading(text = 'Loading…') {
  return h('p', { class: 'loading muted', role: 'status' }, text);
}

/**
 * Asks before deleting: a modal dialog titled `title`, saying `text`. The
 * Delete button runs `remove()` (an async call); on success the dialog
 * closes and `done()` runs, on failure the error shows in the dialog under
 * `failed`. Focus returns to `returnTo` when the dialog closes. `verb` and
 * `busy` name another destructive action (Reset, Resetting…).
 */
export function confirmDelete({ title, text, remove, done, failed, returnTo, verb = 'Delete', busy = 'Deleting…' }) {
  const dialogStatus = h('div');
  const yes = h('button', { type: 'button', class: 'danger', id: 'confirm-delete' }, verb);
  const no = h('button', { type: 'button', id: 'cancel-delete' }, 'Keep it');
  const dialog = h('dialog', { 'aria-labelledby': 'delete-heading', id: 'delete-dialog' },
    h('h2', { id: 'delete-heading' }, title),
    h('p', null, text),
    h('div', { class: 'actions' }, no, yes),
    dialogStatus);
  no.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => { dialog.remove(); returnTo?.focus(); });
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    fill(dialogStatus, loading(busy));
    try {
      await remove();
      dialog.close();
      done();
    } catch (error) {
      yes.disabled = false;
      fill(dialogStatus, errorBox(error, failed));
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  no.focus();
}

/**
 * Saves an edit: `send()` (a PATCH with If-Match) runs with `save`
 * disabled, then `load('Saved.')` shows the result. A refusal shows in
 * `status` with Graph's message; a 412 says that someone else changed the
 * `what` meanwhile and offers to load the current version.
 */
export async function saveEdit({ save, status, alive, send, load, what }) {
  save.disabled = true;
  fill(status, loading('Saving…'));
  try {
    await send();
    if (!alive()) return;
    announce('Saved.');
    await load('Saved.');
  } catch (error) {
    if (!alive()) return;
    save.disabled = false;
    const reload = error.status === 412
      ? h('div', { class: 'actions' }, h('button', { type: 'button', id: 'reload', onclick: () => load() }, 'Load the current version'))
      : null;
    fill(status, errorBox(error,
      error.status === 412 ? `Someone else changed this ${what}` : 'The change was not saved', reload));
  }
}
