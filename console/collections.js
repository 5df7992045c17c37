// The collections views: /beta/agentRegistry/agentCollections, the
// reserved Global and Quarantined among them; one collection with its
// members (added and removed with members/$ref), edited and deleted with
// If-Match. The reserved collections cannot be renamed or deleted, which
// the view says instead of offering it.

import { h, fill, errorBox, loading, when, orNone, facts, announce, confirmDelete as askToDelete, saveEdit } from './dom.js';
import { call, key, query } from './graph.js';
import { claims } from './session.js';
import { gated, unavailableList } from './gate.js';
import { pagedList, nameCell, textField } from './lists.js';
import { reservedName, setMembership } from './agent-links.js';

const SET = '/agentRegistry/agentCollections';
const RESERVED_WHY = 'It is one of the reserved collections every tenant has: its members change, but it cannot be renamed or deleted.';

/** The list, and a form to create a collection. */
export function renderCollections(main, { alive, flash }) {
  const unavailable = [];
  const create = gated('New collection', { id: 'new-collection' }, [['CreateCollection']], () => openCreate(), unavailable);
  const editor = h('div', { id: 'editor' });
  const results = h('section', { id: 'results', 'aria-label': 'Collections' });
  fill(main, h('h1', { tabindex: '-1' }, 'Collections'),
    h('p', { class: 'muted' }, 'Named sets of agents. Global and Quarantined exist in every tenant.'),
    flash ? h('p', { class: 'notice', role: 'status' }, flash) : null,
    h('div', { class: 'actions' }, create),
    unavailableList(unavailable),
    editor,
    results);
  pagedList(results, {
    alive,
    first: { target: SET + query([['$count', 'true'], ['$top', 25], ['$orderby', 'displayName'],
      ['$select', 'id,displayName,description,ownerIds,lastModifiedDateTime']]) },
    id: 'collections',
    noun: ['collection', 'collections'],
    columns: [['Name'], ['Description', 'description'], ['Last modified', 'modified']],
    row: (c) => [
      nameCell(`#/collections/${encodeURIComponent(c.id)}`, c.displayName, c.id),
      h('td', { class: 'description' }, reservedName(c.id) !== 'No' ? h('span', { class: 'badge' }, 'Reserved') : null,
        reservedName(c.id) !== 'No' ? ' ' : null, orNone(c.description)),
      h('td', { class: 'modified' }, when(c.lastModifiedDateTime)),
    ],
    empty: 'There are no collections.',
    failed: 'The collections could not be listed',
  });

  function openCreate() {
    const formStatus = h('div', { id: 'create-status' });
    const save = h('button', { type: 'submit', class: 'primary', id: 'create' }, 'Create');
    const cancel = h('button', { type: 'button', id: 'cancel' }, 'Cancel');
    const me = claims()?.oid ?? '';
    const form = h('form', { class: 'panel', id: 'create-form', 'aria-labelledby': 'create-heading' },
      h('h2', { id: 'create-heading' }, 'New collection'),
      textField('create-name', 'Name', '', { required: true }),
      textField('create-description', 'Description', ''),
      textField('create-owners', 'Owners (object ids, separated by commas)', me, { required: true }),
      h('div', { class: 'actions' }, save, cancel),
      formStatus);
    cancel.addEventListener('click', () => { fill(editor); create.focus(); });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const value = (fid) => form.querySelector(`#${fid}`).value.trim();
      const body = {
        displayName: value('create-name'),
        description: value('create-description') || null,
        ownerIds: value('create-owners').split(',').map((o) => o.trim()).filter(Boolean),
      };
      save.disabled = true;
      fill(formStatus, loading('Creating…'));
      try {
        const { json } = await call('POST', SET, { body });
        if (!alive()) return;
        announce(`Created ${json.displayName}.`);
        location.hash = `#/collections/${encodeURIComponent(json.id)}`;
      } catch (error) {
        if (!alive()) return;
        save.disabled = false;
        fill(formStatus, errorBox(error, 'The collection was not created'));
      }
    });
    fill(editor, form);
    form.querySelector('#create-name').focus();
  }
}

/** One collection and its members; `leave(message)` goes back to the list. */
export function renderCollection(main, id, { alive, leave }) {
  const back = h('p', { class: 'crumbs' }, h('a', { href: '#/collections' }, '← All collections'));
  const path = `${SET}/${key(id)}`;
  const reserved = reservedName(id);
  fill(main, back, h('h1', { tabindex: '-1' }, 'Collection'), loading('Loading the collection…'));
  load();

  async function load(notice) {
    let one;
    try {
      one = await call('GET', path);
    } catch (error) {
      if (!alive()) return;
      fill(main, back, h('h1', { tabindex: '-1' }, 'Collection'),
        errorBox(error, error.status === 404 ? 'This collection does not exist (any more)' : 'The collection could not be read'));
      return;
    }
    if (!alive()) return;
    show(one.json, one.etag, notice);
  }

  function show(c, etag, notice) {
    const unavailable = [];
    const status = h('div', { id: 'action-status' });
    const editor = h('div', { id: 'editor' });
    const name = c.displayName || c.id;
    let edit;
    let remove;
    if (reserved !== 'No') {
      edit = h('button', { type: 'button', id: 'edit', disabled: true, title: RESERVED_WHY }, 'Edit');
      remove = h('button', { type: 'button', id: 'delete', class: 'danger', disabled: true, title: RESERVED_WHY }, 'Delete');
    } else {
      edit = gated('Edit', { id: 'edit' }, [['UpdateCollection']], () => openEditor(), unavailable);
      remove = gated('Delete', { id: 'delete', class: 'danger' }, [['DeleteCollection']], () => confirmDelete(), unavailable);
    }
    const members = h('section', { id: 'members', 'aria-label': 'Members' });
    const memberStatus = h('div', { id: 'member-status' });
    const memberInput = h('input', { id: 'add-member', name: 'member', list: 'agent-choices', autocomplete: 'off', required: true });
    const agentChoices = h('datalist', { id: 'agent-choices' });
    const memberUnavailable = [];
    const add = gated('Add', { id: 'add-member-button' }, [['AddMember', reserved]], null, memberUnavailable);
    add.type = 'submit';
    const addForm = h('form', { class: 'inline', id: 'add-member-form' },
      h('div', { class: 'field grow' }, h('label', { for: 'add-member' }, 'Add an agent (its id)'), memberInput, agentChoices),
      add);
    const removeRule = [['RemoveMember', reserved]];
    fill(main,
      back,
      h('div', { class: 'title-line' },
        h('h1', { tabindex: '-1', id: 'collection-name' }, name),
        reserved !== 'No' ? h('span', { class: 'badge', id: 'reserved-badge' }, 'Reserved') : null),
      h('p', { class: 'muted' }, 'Id ', h('code', { id: 'collection-id' }, c.id)),
      notice ? h('p', { class: 'notice', role: 'status', id: 'notice' }, notice) : null,
      h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' }, edit, remove),
      reserved !== 'No' ? h('p', { class: 'hint', id: 'reserved-why' }, RESERVED_WHY) : null,
      unavailableList(unavailable),
      status,
      editor,
      h('section', { 'aria-labelledby': 'details-heading' },
        h('h2', { id: 'details-heading' }, 'Details'),
        facts([
          ['Description', orNone(c.description)],
          ['Owners', orNone(c.ownerIds)],
          ['Managed by', orNone(c.managedBy)],
          ['Originating store', orNone(c.originatingStore)],
          ['Created', [when(c.createdDateTime), c.createdBy ? ` by ${c.createdBy}` : '']],
          ['Last modified', when(c.lastModifiedDateTime)],
          ['ETag', h('code', null, etag || '—')],
        ])),
      h('h2', { id: 'members-heading' }, 'Members'),
      addForm,
      unavailableList(memberUnavailable, 'member-unavailable'),
      memberStatus,
      members,
      h('section', { 'aria-labelledby': 'raw-heading' },
        h('h2', { id: 'raw-heading' }, 'Raw JSON'),
        h('details', null,
          h('summary', null, 'The collection as Graph returns it'),
          h('pre', { id: 'raw-json', tabindex: '0' }, JSON.stringify(c, null, 2)))));

    const list = pagedList(members, {
      alive,
      first: { target: `${path}/members${query([['$count', 'true'], ['$top', 25], ['$orderby', 'displayName'], ['$select', 'id,displayName']])}` },
      id: 'member-table',
      noun: ['member', 'members'],
      columns: [['Agent'], ['Action']],
      row: (a) => {
        const label = a.displayName || a.id;
        const button = gated('Remove', { class: 'small', 'aria-label': `Remove ${label}`, 'data-member': a.id }, removeRule,
          () => change(button, a.id, false), []);
        return [nameCell(`#/agents/${encodeURIComponent(a.id)}`, a.displayName, a.id), h('td', null, button)];
      },
      empty: 'This collection has no members.',
      failed: 'The members could not be listed',
    });

    async function change(button, agentId, on) {
      button.disabled = true;
      fill(memberStatus, loading(on ? 'Adding…' : 'Removing…'));
      try {
        await setMembership(c.id, agentId, on);
        if (!alive()) return;
        const text = on ? `Added ${agentId}.` : `Removed ${agentId}.`;
        announce(text);
        fill(memberStatus, h('p', { class: 'notice', role: 'status' }, text));
        if (on) memberInput.value = '';
        button.disabled = false;
        list.reload();
      } catch (error) {
        if (!alive()) return;
        button.disabled = false;
        fill(memberStatus, errorBox(error, on ? 'The agent was not added' : 'The agent was not removed'));
      }
    }
    addForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const agentId = memberInput.value.trim();
      if (!add.disabled && agentId) change(add, agentId, true);
    });
    call('GET', `/agentRegistry/agentInstances${query([['$select', 'id,displayName'], ['$top', 100], ['$orderby', 'displayName']])}`)
      .then(({ json }) => {
        if (!alive()) return;
        for (const a of json.value ?? []) agentChoices.append(h('option', { value: a.id }, a.displayName || a.id));
      })
      .catch(() => {});

    function openEditor() {
      const formStatus = h('div', { id: 'edit-status' });
      const save = h('button', { type: 'submit', class: 'primary', id: 'save' }, 'Save');
      const cancel = h('button', { type: 'button', id: 'cancel' }, 'Cancel');
      const form = h('form', { class: 'panel', id: 'edit-form', 'aria-labelledby': 'edit-heading' },
        h('h2', { id: 'edit-heading' }, 'Edit'),
        textField('edit-name', 'Name', c.displayName, { required: true }),
        textField('edit-description', 'Description', c.description),
        h('div', { class: 'actions' }, save, cancel),
        formStatus);
      cancel.addEventListener('click', () => { fill(editor); edit.focus(); });
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        const body = {
          displayName: form.querySelector('#edit-name').value.trim(),
          description: form.querySelector('#edit-description').value.trim() || null,
        };
        await saveEdit({
          save, status: formStatus, alive, load, what: 'collection',
          send: () => call('PATCH', path, { body, etag }),
        });
      });
      fill(editor, form);
      form.querySelector('#edit-name').focus();
    }

    function confirmDelete() {
      askToDelete({
        title: `Delete ${name}?`,
        text: 'The collection is deleted; its members, the agents, are kept. This cannot be undone.',
        remove: () => call('DELETE', path, { etag }),
        done: () => leave(`Deleted ${name}.`),
        failed: 'The collection was not deleted',
        returnTo: remove,
      });
    }
  }
}
