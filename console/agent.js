// The agent view: one agent instance with its card manifest rendered for
// people, its collections, its raw JSON; edit (If-Match with its ETag, so
// that a change by someone else is a 412, not a silent overwrite),
// quarantine (membership of the reserved Quarantined collection), delete,
// and (agent-links.js) its manifest link and its collections.

import { h, fill, errorBox, loading, when, orNone, facts, announce, confirmDelete as askToDelete, saveEdit } from './dom.js';
import { call, key } from './graph.js';
import { allows } from './session.js';
import { QUARANTINED } from './agents.js';
import { manifestCard } from './card.js';
import { gated } from './gate.js';
import { membershipPanel, manifestPanel } from './agent-links.js';

/** Renders the agent `id`; `leave(message)` goes back to the list. */
export function renderAgent(main, id, { alive, backHash, leave }) {
  const back = h('p', { class: 'crumbs' }, h('a', { href: backHash }, '← All agents'));
  fill(main, back, h('h1', { tabindex: '-1' }, 'Agent'), loading('Loading the agent…'));
  load();

  async function load(notice) {
    const path = `/agentRegistry/agentInstances/${key(id)}`;
    let agent;
    let collections;
    try {
      const [one, memberships] = await Promise.all([
        call('GET', `${path}?$expand=agentCardManifest`),
        call('GET', `${path}/collections?$select=id,displayName&$top=100`).catch((error) => ({ error })),
      ]);
      agent = one;
      collections = memberships;
    } catch (error) {
      if (!alive()) return;
      fill(main, back, h('h1', { tabindex: '-1' }, 'Agent'),
        errorBox(error, error.status === 404 ? 'This agent does not exist (any more)' : 'The agent could not be read'));
      return;
    }
    if (!alive()) return;
    show(agent.json, agent.etag, collections, notice);
  }

  function show(agent, etag, collections, notice) {
    const manifest = agent.agentCardManifest ?? null;
    const memberOf = collections.error ? null : (collections.json.value ?? []);
    const quarantined = memberOf?.some((c) => c.id === QUARANTINED) ?? false;
    const status = h('div', { id: 'action-status' });
    const unavailable = [];

    // Buttons the token does not allow are disabled, and say what they need.
    const action = (label, attrs, rules, onClick) => gated(label, attrs, rules, onClick, unavailable);

    const editRules = [['UpdateInstance']];
    const edit = action('Edit', { id: 'edit' }, editRules, () => openEditor());
    const quarantine = quarantined
      ? action('Release from quarantine', { id: 'quarantine' }, [['RemoveMember', 'Quarantined']], () => setQuarantine(false))
      : action('Quarantine', { id: 'quarantine' }, [['AddMember', 'Quarantined']], () => setQuarantine(true));
    const remove = action('Delete', { id: 'delete', class: 'danger' }, [['DeleteInstance']], () => confirmDelete());
    const canEditCard = allows('WriteNestedManifest');

    const editor = h('div', { id: 'editor' });

    fill(main,
      back,
      h('div', { class: 'title-line' },
        h('h1', { tabindex: '-1', id: 'agent-name' }, agent.displayName || agent.id),
        quarantined ? h('span', { class: 'badge quarantined', id: 'quarantined-badge' }, 'Quarantined') : null),
      h('p', { class: 'muted' }, 'Id ', h('code', { id: 'agent-id' }, agent.id)),
      notice ? h('p', { class: 'notice', role: 'status', id: 'notice' }, notice) : null,
      h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' }, edit, quarantine, remove),
      unavailable.length ? h('ul', { class: 'unavailable', id: 'unavailable' }, unavailable.map((u) => h('li', null, u))) : null,
      status,
      editor,
      h('div', { class: 'two' },
        h('section', { 'aria-labelledby': 'details-heading' },
          h('h2', { id: 'details-heading' }, 'Details'),
          facts([
            ['Owners', orNone(agent.ownerIds)],
            ['Managed by', orNone(agent.managedBy)],
            ['Originating store', orNone(agent.originatingStore)],
            ['Source agent id', orNone(agent.sourceAgentId)],
            ['Agent identity', orNone(agent.agentIdentityId)],
            ['Identity blueprint', orNone(agent.agentIdentityBlueprintId)],
            ['Agent user', orNone(agent.agentUserId)],
            ['Created', [when(agent.createdDateTime), agent.createdBy ? ` by ${agent.createdBy}` : '']],
            ['Last modified', when(agent.lastModifiedDateTime)],
            ['ETag', h('code', { id: 'agent-etag' }, etag || '—')],
          ])),
        h('section', { 'aria-labelledby': 'collections-heading' },
          h('h2', { id: 'collections-heading' }, 'Collections'),
          memberOf === null
            ? errorBox(collections.error, 'The collections could not be read')
            : membershipPanel(agent, memberOf, { alive, reload: load }),
          h('h2', { id: 'interfaces-heading' }, 'Interfaces'),
          interfaces(agent))),
      checks(agent),
      manifestPanel(agent, etag, { alive, reload: load }),
      manifestCard(manifest),
      h('section', { 'aria-labelledby': 'raw-heading' },
        h('h2', { id: 'raw-heading' }, 'Raw JSON'),
        h('details', null,
          h('summary', null, 'The agent instance as Graph returns it (with its manifest expanded)'),
          h('pre', { id: 'raw-json', tabindex: '0' }, JSON.stringify(agent, null, 2)))));

    function openEditor() {
      const nameInput = h('input', { id: 'edit-name', name: 'displayName', value: agent.displayName ?? '', required: true });
      const cardNote = !manifest
        ? 'This agent has no card manifest, so it has no description to edit.'
        : !canEditCard.ok ? `Editing the card's description needs ${canEditCard.needs}.` : '';
      const descriptionInput = h('textarea', {
        id: 'edit-description', name: 'description', rows: 3,
        disabled: Boolean(cardNote), 'aria-describedby': cardNote ? 'edit-description-note' : null,
      });
      descriptionInput.value = manifest?.description ?? '';
      const formStatus = h('div', { id: 'edit-status' });
      const save = h('button', { type: 'submit', class: 'primary', id: 'save' }, 'Save');
      const cancel = h('button', { type: 'button', id: 'cancel' }, 'Cancel');
      const form = h('form', { class: 'panel', id: 'edit-form', 'aria-labelledby': 'edit-heading' },
        h('h2', { id: 'edit-heading', tabindex: '-1' }, 'Edit'),
        h('div', { class: 'field' }, h('label', { for: 'edit-name' }, 'Display name'), nameInput),
        h('div', { class: 'field' },
          h('label', { for: 'edit-description' }, 'Description (of its agent card)'),
          descriptionInput,
          cardNote ? h('p', { class: 'hint', id: 'edit-description-note' }, cardNote) : null),
        h('p', { class: 'hint' }, 'Saved with If-Match: ', h('code', null, etag || 'none'),
          '. If someone changed the agent since it was loaded, the save is refused rather than overwriting their change.'),
        h('div', { class: 'actions' }, save, cancel),
        formStatus);
      cancel.addEventListener('click', () => { fill(editor); edit.focus(); });
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        const body = {};
        if (nameInput.value.trim() !== (agent.displayName ?? '')) body.displayName = nameInput.value.trim();
        if (!cardNote && descriptionInput.value !== (manifest?.description ?? '')) {
          body.agentCardManifest = { description: descriptionInput.value };
        }
        if (Object.keys(body).length === 0) {
          fill(formStatus, h('p', { class: 'muted', role: 'status' }, 'Nothing changed.'));
          return;
        }
        await saveEdit({
          save, status: formStatus, alive, load, what: 'agent',
          send: () => call('PATCH', `/agentRegistry/agentInstances/${key(id)}`, { body, etag }),
        });
      });
      fill(editor, form);
      nameInput.focus();
    }

    async function setQuarantine(on) {
      quarantine.disabled = true;
      fill(status, loading(on ? 'Quarantining…' : 'Releasing…'));
      const members = `/agentRegistry/agentCollections/${QUARANTINED}/members`;
      try {
        if (on) {
          const ref = `${location.origin}/beta/agentRegistry/agentInstances('${agent.id.replace(/'/g, "''")}')`;
          await call('POST', `${members}/$ref`, { body: { '@odata.id': ref } });
        } else {
          await call('DELETE', `${members}/${key(agent.id)}/$ref`);
        }
        if (!alive()) return;
        announce(on ? 'Quarantined.' : 'Released from quarantine.');
        await load(on ? 'Quarantined: the agent is a member of the Quarantined collection.' : 'Released from quarantine.');
      } catch (error) {
        if (!alive()) return;
        quarantine.disabled = false;
        fill(status, errorBox(error, on ? 'The agent was not quarantined' : 'The agent was not released'));
      }
    }

    function confirmDelete() {
      const name = agent.displayName || agent.id;
      askToDelete({
        title: `Delete ${name}?`,
        text: 'The agent instance and its collection memberships are deleted; its card manifest is kept. This cannot be undone.',
        remove: () => call('DELETE', `/agentRegistry/agentInstances/${key(id)}`, { etag }),
        done: () => leave(`Deleted ${name}.`),
        failed: 'The agent was not deleted',
        returnTo: remove,
      });
    }
  }
}

function interfaces(agent) {
  const rows = [];
  if (agent.url) rows.push([agent.preferredTransport || 'Preferred', agent.url]);
  for (const i of agent.additionalInterfaces ?? []) rows.push([i.transport || 'Interface', i.url]);
  if (rows.length === 0) return h('p', { class: 'muted' }, 'No interface URL.');
  return facts(rows.map(([t, url]) => [t, h('code', null, url)]), { id: 'interfaces' });
}

/**
 * What the registry knows of the agent's card, from its instance
 * annotations: the validation of its built card (when the tenant validates
 * cards) and its last health check (when the tenant watches its agents).
 */
function checks(agent) {
  const validation = agent['@agentry.cardValidation'];
  const health = agent['@agentry.health'];
  if (!validation && !health) return null;
  const rows = [];
  if (validation) {
    const problems = validation.problems ?? [];
    rows.push(['Card validation', validation.valid
      ? h('span', { class: 'badge ok', id: 'validation' }, `valid A2A ${validation.version} card`)
      : [h('span', { class: 'badge warn', id: 'validation' }, `${problems.length} problem(s)`),
        h('ul', { class: 'problems' }, problems.map((p) => h('li', null, h('code', null, p.pointer || '/'), ' ', p.message)))]]);
  }
  if (health) {
    const state = health.state ?? 'unknown';
    rows.push(['Health', h('span', { class: `badge ${state === 'healthy' ? 'ok' : 'warn'}`, id: 'health' }, state)]);
    if (health.error) rows.push(['Why', health.error]);
    if ((health.differences ?? []).length) {
      rows.push(['Changed', h('ul', { class: 'problems' },
        health.differences.map((d) => h('li', null, h('code', null, d.pointer), ` ${d.change}`)))]);
    }
    rows.push(['Checked at', health.url ? h('code', null, health.url) : orNone(null)]);
    rows.push(['Last checked', when(health.checkedDateTime)]);
    rows.push(['In this state since', when(health.changedDateTime)]);
  }
  return h('section', { 'aria-labelledby': 'checks-heading', id: 'checks' },
    h('h2', { id: 'checks-heading' }, 'Card checks'),
    facts(rows));
}
