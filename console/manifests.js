// The manifests views: /beta/agentRegistry/agentCardManifests searched,
// sorted, counted and paged, and a new one created (Agentry's own POST); one manifest with its card rendered for
// people, the agents that link it, its raw JSON; edit and delete (If-Match
// with its ETag).

import { h, fill, errorBox, loading, when, orNone, facts, announce, confirmDelete as askToDelete, saveEdit } from './dom.js';
import { call, key, query } from './graph.js';
import { manifestCard } from './card.js';
import { gated, unavailableList } from './gate.js';
import { pagedList, nameCell, searchExpression, literal, select } from './lists.js';

const SET = '/agentRegistry/agentCardManifests';
const SORTS = [
  ['name', 'Name, A to Z', 'displayName'],
  ['modified', 'Recently modified', 'lastModifiedDateTime desc'],
];

/** The list; its options are in the URL (`#/manifests?q=…&sort=…`). */
export function renderManifests(main, params, { alive, flash }) {
  const q = params.get('q') ?? '';
  const sort = SORTS.some(([id]) => id === params.get('sort')) ? params.get('sort') : 'name';
  const input = h('input', { type: 'search', id: 'manifest-search', name: 'q', value: q, autocomplete: 'off' });
  const form = h('form', { class: 'panel', role: 'search', 'aria-label': 'Find manifests' },
    h('div', { class: 'row' },
      h('div', { class: 'field grow' }, h('label', { for: 'manifest-search' }, 'Search'), input),
      select('manifest-sort', 'Sort by', SORTS.map(([id, text]) => [id, text]), sort),
      h('button', { type: 'submit', class: 'primary', id: 'manifest-search-button' }, 'Search')),
    h('p', { class: 'hint' }, 'Finds manifests whose name or description has a word starting with each word you type.'));
  const submit = (event) => {
    event?.preventDefault();
    const p = new URLSearchParams();
    const text = input.value.trim();
    if (text) p.set('q', text);
    const chosen = form.querySelector('#manifest-sort').value;
    if (chosen !== 'name') p.set('sort', chosen);
    const next = p.toString() ? `#/manifests?${p}` : '#/manifests';
    if (location.hash === next) list.reload();
    else location.hash = next;
  };
  form.addEventListener('submit', submit);
  form.querySelector('#manifest-sort').addEventListener('change', () => submit());
  const results = h('section', { id: 'results', 'aria-label': 'Manifests' });
  const unavailable = [];
  const create = gated('New manifest', { id: 'new-manifest' }, [['CreateManifest']], () => openCreate(), unavailable);
  const editor = h('div', { id: 'editor' });
  fill(main, h('h1', { tabindex: '-1' }, 'Manifests'),
    h('p', { class: 'muted' }, 'Agent card manifests: what an agent says it can do. Several agents may link one.'),
    flash ? h('p', { class: 'notice', role: 'status' }, flash) : null,
    h('div', { class: 'actions' }, create),
    unavailableList(unavailable),
    editor,
    form, results);

  function openCreate() {
    const formStatus = h('div', { id: 'create-status' });
    const save = h('button', { type: 'submit', class: 'primary', id: 'create' }, 'Create');
    const cancel = h('button', { type: 'button', id: 'cancel' }, 'Cancel');
    const field = (fid, label, attrs) => h('div', { class: 'field' },
      h('label', { for: fid }, label), h('input', { id: fid, autocomplete: 'off', ...attrs }));
    const createForm = h('form', { class: 'panel', id: 'create-form', 'aria-labelledby': 'create-heading' },
      h('h2', { id: 'create-heading' }, 'New manifest'),
      field('create-name', 'Name', { required: true }),
      field('create-description', 'Description'),
      field('create-version', 'Version'),
      h('div', { class: 'actions' }, save, cancel),
      formStatus);
    cancel.addEventListener('click', () => { fill(editor); create.focus(); });
    createForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      const value = (fid) => createForm.querySelector(`#${fid}`).value.trim() || null;
      save.disabled = true;
      fill(formStatus, loading('Creating…'));
      try {
        const { json } = await call('POST', SET, {
          body: { displayName: value('create-name'), description: value('create-description'), version: value('create-version') },
        });
        if (!alive()) return;
        announce(`Created ${json.displayName}.`);
        location.hash = `#/manifests/${encodeURIComponent(json.id)}`;
      } catch (error) {
        if (!alive()) return;
        save.disabled = false;
        fill(formStatus, errorBox(error, 'The manifest was not created'));
      }
    });
    fill(editor, createForm);
    createForm.querySelector('#create-name').focus();
  }
  const search = searchExpression(q);
  const list = pagedList(results, {
    alive,
    first: {
      target: SET + query([['$count', 'true'], ['$top', 25], ['$orderby', SORTS.find(([id]) => id === sort)[2]],
        ['$search', search], ['$select', 'id,displayName,description,version,lastModifiedDateTime']]),
      eventual: search !== '',
    },
    id: 'manifests',
    noun: ['manifest', 'manifests'],
    columns: [['Name'], ['Description', 'description'], ['Version', 'store'], ['Last modified', 'modified']],
    row: (m) => [
      nameCell(`#/manifests/${encodeURIComponent(m.id)}`, m.displayName, m.id),
      h('td', { class: 'description' }, orNone(m.description)),
      h('td', { class: 'store' }, orNone(m.version)),
      h('td', { class: 'modified' }, when(m.lastModifiedDateTime)),
    ],
    empty: q ? 'No manifest matches. Try other words.' : 'There are no card manifests in this tenant yet.',
    failed: 'The manifests could not be listed',
  });
}

/** One manifest; `leave(message)` goes back to the list. */
export function renderManifest(main, id, { alive, leave }) {
  const back = h('p', { class: 'crumbs' }, h('a', { href: '#/manifests' }, '← All manifests'));
  const path = `${SET}/${key(id)}`;
  fill(main, back, h('h1', { tabindex: '-1' }, 'Manifest'), loading('Loading the manifest…'));
  load();

  async function load(notice) {
    let one;
    let linked;
    try {
      [one, linked] = await Promise.all([
        call('GET', path),
        call('GET', `/agentRegistry/agentInstances${query([['$filter', `agentCardManifest/id eq ${literal(id)}`],
          ['$select', 'id,displayName'], ['$top', 100], ['$count', 'true']])}`).catch((error) => ({ error })),
      ]);
    } catch (error) {
      if (!alive()) return;
      fill(main, back, h('h1', { tabindex: '-1' }, 'Manifest'),
        errorBox(error, error.status === 404 ? 'This manifest does not exist (any more)' : 'The manifest could not be read'));
      return;
    }
    if (!alive()) return;
    show(one.json, one.etag, linked, notice);
  }

  function show(m, etag, linked, notice) {
    const unavailable = [];
    const status = h('div', { id: 'action-status' });
    const editor = h('div', { id: 'editor' });
    const edit = gated('Edit', { id: 'edit' }, [['UpdateManifest']], () => openEditor(), unavailable);
    const remove = gated('Delete', { id: 'delete', class: 'danger' }, [['DeleteManifest']], () => confirmDelete(), unavailable);
    const agents = linked.error ? null : (linked.json.value ?? []);
    fill(main,
      back,
      h('h1', { tabindex: '-1', id: 'manifest-name' }, m.displayName || m.id),
      h('p', { class: 'muted' }, 'Id ', h('code', { id: 'manifest-id' }, m.id)),
      notice ? h('p', { class: 'notice', role: 'status', id: 'notice' }, notice) : null,
      h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' }, edit, remove),
      unavailableList(unavailable),
      status,
      editor,
      h('div', { class: 'two' },
        h('section', { 'aria-labelledby': 'details-heading' },
          h('h2', { id: 'details-heading' }, 'Details'),
          facts([
            ['Owners', orNone(m.ownerIds)],
            ['Managed by', orNone(m.managedBy)],
            ['Originating store', orNone(m.originatingStore)],
            ['Created', [when(m.createdDateTime), m.createdBy ? ` by ${m.createdBy}` : '']],
            ['Last modified', when(m.lastModifiedDateTime)],
            ['ETag', h('code', { id: 'manifest-etag' }, etag || '—')],
          ])),
        h('section', { 'aria-labelledby': 'linked-heading' },
          h('h2', { id: 'linked-heading' }, 'Agents linking it'),
          agents === null
            ? errorBox(linked.error, 'The agents linking it could not be listed')
            : agents.length === 0
              ? h('p', { class: 'muted', id: 'linked-agents' }, 'No agent links this manifest.')
              : [h('ul', { id: 'linked-agents' }, agents.map((a) => h('li', null,
                h('a', { href: `#/agents/${encodeURIComponent(a.id)}` }, a.displayName || a.id)))),
              linked.json['@odata.count'] > agents.length
                ? h('p', { class: 'muted' }, `and ${linked.json['@odata.count'] - agents.length} more`)
                : null])),
      manifestCard(m, 'This manifest is empty.'),
      h('section', { 'aria-labelledby': 'raw-heading' },
        h('h2', { id: 'raw-heading' }, 'Raw JSON'),
        h('details', null,
          h('summary', null, 'The manifest as Graph returns it'),
          h('pre', { id: 'raw-json', tabindex: '0' }, JSON.stringify(m, null, 2)))));

    function openEditor() {
      const field = (fid, label, value, attrs) => h('div', { class: 'field' },
        h('label', { for: fid }, label), h('input', { id: fid, value: value ?? '', ...attrs }));
      const description = h('textarea', { id: 'edit-description', rows: 3 });
      description.value = m.description ?? '';
      const skills = h('textarea', { id: 'edit-skills', rows: 8, class: 'mono', 'aria-describedby': 'edit-skills-hint', spellcheck: 'false' });
      skills.value = JSON.stringify(m.skills ?? [], null, 2);
      const formStatus = h('div', { id: 'edit-status' });
      const save = h('button', { type: 'submit', class: 'primary', id: 'save' }, 'Save');
      const cancel = h('button', { type: 'button', id: 'cancel' }, 'Cancel');
      const form = h('form', { class: 'panel', id: 'edit-form', 'aria-labelledby': 'edit-heading' },
        h('h2', { id: 'edit-heading', tabindex: '-1' }, 'Edit'),
        field('edit-name', 'Name', m.displayName, { required: true }),
        h('div', { class: 'field' }, h('label', { for: 'edit-description' }, 'Description'), description),
        field('edit-version', 'Version', m.version),
        h('div', { class: 'field' }, h('label', { for: 'edit-skills' }, 'Skills (JSON)'), skills,
          h('p', { class: 'hint', id: 'edit-skills-hint' }, 'An array of skills, each with id, displayName, description, tags and examples.')),
        h('div', { class: 'actions' }, save, cancel),
        formStatus);
      cancel.addEventListener('click', () => { fill(editor); edit.focus(); });
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        let parsed;
        try {
          parsed = JSON.parse(skills.value || '[]');
        } catch (e) {
          fill(formStatus, errorBox({ message: `The skills are not JSON: ${e.message}.` }, 'Nothing was sent'));
          skills.focus();
          return;
        }
        const body = {
          displayName: form.querySelector('#edit-name').value.trim(),
          description: description.value.trim() || null,
          version: form.querySelector('#edit-version').value.trim() || null,
          skills: parsed,
        };
        await saveEdit({
          save, status: formStatus, alive, load, what: 'manifest',
          send: () => call('PATCH', path, { body, etag }),
        });
      });
      fill(editor, form);
      form.querySelector('#edit-name').focus();
    }

    function confirmDelete() {
      const name = m.displayName || m.id;
      askToDelete({
        title: `Delete ${name}?`,
        text: agents && agents.length
          ? `${agents.length} agent(s) link this manifest: the server refuses to delete it until they are unlinked.`
          : 'The manifest is deleted. This cannot be undone.',
        remove: () => call('DELETE', path, { etag }),
        done: () => leave(`Deleted ${name}.`),
        failed: 'The manifest was not deleted',
        returnTo: remove,
      });
    }
  }
}
