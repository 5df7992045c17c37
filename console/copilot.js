// The Copilot settings view: each supported policy setting
// (/beta/copilot/admin/policySettings/{id}) with its value in effect and
// the policy that holds it, or why it cannot be read or changed (Graph's
// own error: a group-scoped setting, too many group policies); editing
// sends PATCH with the new value. The holding policy's service, scope and
// priority come from the control plane (/_agentry/copilot/policies/{id})
// when the token may read it. Then the tenant's limited mode and enhanced
// personalization.

import { h, fill, errorBox, loading, facts, orNone, announce } from './dom.js';
import { call, key } from './graph.js';
import { allows } from './session.js';

/** The supported settings: id, what it is, who owns it, the values it takes. */
const SETTINGS = [
  ['microsoft.copilot.copilotchatpinning', 'Pin Copilot Chat', 'Cloud Policy service', [['0', '0 — off'], ['1', '1 — on']]],
  ['microsoft.copilot.allowwebsearch', 'Web search', 'Cloud Policy service', [['0', '0'], ['1', '1'], ['2', '2']]],
  ['microsoft.copilot.imagegeneration', 'Image generation', 'Cloud Policy service', [['0', '0 — off'], ['1', '1 — on']]],
  ['microsoft.copilot.blockaccesstoopenfiles', 'Block access to open files', 'Intune', [['0', '0 — off'], ['1', '1 — on']]],
  ['microsoft.copilot.allowinadmincenters', 'Copilot in admin centers', 'Intune', [['0', '0 — off'], ['1', '1 — on']]],
];

/** Renders the view; `alive()` is false once the reader went elsewhere. */
export function renderCopilot(main, { alive }) {
  const list = h('div', { id: 'settings' });
  const tenant = h('div', { id: 'tenant-settings' }, loading('Loading…'));
  fill(main, h('h1', { tabindex: '-1' }, 'Copilot settings'),
    h('p', { class: 'muted' },
      'Each policy setting as Graph resolves it: the value in effect and the tenant-level policy that holds it.'),
    list,
    h('h2', null, 'Tenant settings'),
    tenant);
  for (const [id, label, owner, values] of SETTINGS) {
    const slot = h('section', { class: 'panel setting', 'aria-labelledby': `h-${id}`, 'data-setting': id },
      h('h2', { id: `h-${id}` }, label), loading('Loading…'));
    list.append(slot);
    loadSetting(slot, id, label, owner, values);
  }
  loadTenant();

  async function loadSetting(slot, id, label, owner, values, notice) {
    let got;
    try {
      got = await call('GET', `/copilot/admin/policySettings/${key(id)}`);
    } catch (error) {
      if (!alive()) return;
      fill(slot, h('h2', { id: `h-${id}` }, label),
        h('p', { class: 'muted' }, h('code', null, id), ` · owned by ${owner}`),
        errorBox(error, 'This setting cannot be read or changed here'));
      return;
    }
    if (!alive()) return;
    const setting = got.json;
    const verdict = allows('UpdatePolicySetting');
    const fieldId = `value-${id}`;
    const choice = h('select', { id: fieldId, name: 'value', disabled: !verdict.ok },
      values.map(([v, text]) => h('option', { value: v, selected: v === setting.value }, text)));
    if (setting.value === null || setting.value === undefined) {
      choice.prepend(h('option', { value: '', selected: true, disabled: true }, 'not set'));
    }
    const save = h('button', { type: 'submit', disabled: !verdict.ok, title: verdict.ok ? undefined : `Needs ${verdict.needs}` }, 'Save');
    const status = h('div', { role: 'status' });
    const form = h('form', { class: 'row', 'aria-label': `Change ${label}` },
      h('div', { class: 'field' }, h('label', { for: fieldId }, 'Value'), choice),
      h('div', { class: 'field' }, h('span', { class: 'label-space', 'aria-hidden': 'true' }, ' '), save));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!choice.value) return;
      save.disabled = true;
      fill(status, loading('Saving…'));
      try {
        await call('PATCH', `/copilot/admin/policySettings/${key(id)}`, { body: { value: choice.value } });
        if (!alive()) return;
        announce(`${label} saved.`);
        loadSetting(slot, id, label, owner, values, `Saved: ${choice.value}.`);
      } catch (error) {
        if (!alive()) return;
        save.disabled = false;
        fill(status, errorBox(error, `${label} was not changed`));
      }
    });
    const policy = await holdingPolicy(setting.policyId);
    if (!alive()) return;
    fill(slot, h('h2', { id: `h-${id}` }, label),
      h('p', { class: 'muted' }, h('code', null, id), ` · owned by ${owner}`),
      notice ? h('p', { class: 'notice', role: 'status' }, notice) : null,
      facts([
        ['In effect', h('span', { class: 'setting-value' }, setting.value ?? 'not set')],
        ['Held by policy', orNone(setting.policyId)],
        ...policy,
      ]),
      form,
      verdict.ok ? null : h('p', { class: 'hint' }, `Changing it needs ${verdict.needs}.`),
      status);
  }

  /**
   * The holding policy's name, service, scope and priority, as fact rows:
   * read from the control plane, which needs Agentry.Admin; without it,
   * one row saying so.
   */
  async function holdingPolicy(policyId) {
    if (!policyId) return [];
    const verdict = allows('Control');
    if (!verdict.ok) return [['Policy details', h('span', { class: 'muted' }, `need ${verdict.needs}`)]];
    try {
      const { json } = await call('GET', `/_agentry/copilot/policies/${encodeURIComponent(policyId)}`);
      const scope = json.scope === 'group' && json.targetGroupIds?.length
        ? `group (${json.targetGroupIds.join(', ')})` : json.scope;
      return [
        ['Policy name', orNone(json.displayName)],
        ['Service', json.service === 'intune' ? 'Intune' : json.service === 'cloudPolicyService' ? 'Cloud Policy service' : orNone(json.service)],
        ['Scope', h('span', { class: 'policy-scope' }, orNone(scope))],
        ['Priority', h('span', { class: 'policy-priority' }, orNone(json.priority))],
      ];
    } catch (error) {
      return [['Policy details', errorBox(error, 'The policy could not be read')]];
    }
  }

  async function loadTenant() {
    const rows = [];
    for (const [path, label, field] of [
      ['/copilot/admin/settings/limitedMode', 'Limited mode for a group', 'isEnabledForGroup'],
      ['/copilot/settings/people/enhancedPersonalization', 'Enhanced personalization in the organization', 'isEnabledInOrganization'],
    ]) {
      try {
        const { json } = await call('GET', path);
        rows.push([label, json[field] === true ? 'on' : json[field] === false ? 'off' : orNone(null)]);
      } catch (error) {
        rows.push([label, errorBox(error, 'Not readable')]);
      }
    }
    if (!alive()) return;
    fill(tenant, facts(rows, { id: 'tenant-facts' }));
  }
}
