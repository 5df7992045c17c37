// The sign-in page: an account of the external OpenID Connect issuer when
// the server has one for the console (the primary way then), a local user
// of this server's identity provider (the authorization-code flow with
// PKCE, through the server's own sign-in page), a pasted bearer token, or,
// on a loopback server started with --console-dev-signin, the built-in
// admin user without a password.

import { h, fill, errorBox, announce } from './dom.js';
import { devSession } from './graph.js';
import { signIn, startSignIn, startExternalSignIn, DEFAULT_TENANT } from './session.js';

/** The external issuer's sign-in: one button, to its authorization endpoint. */
function externalPanel(external) {
  const status = h('div', { id: 'external-status' });
  let host = external.authorizationEndpoint;
  try {
    host = new URL(external.authorizationEndpoint).host;
  } catch {
    // Shown as configured.
  }
  const button = h('button', { type: 'button', class: 'primary', id: 'signin-external' }, `Sign in at ${host}`);
  button.addEventListener('click', async () => {
    button.disabled = true;
    fill(status, h('p', { class: 'loading muted', role: 'status' }, 'Going to the sign-in page…'));
    const problem = await startExternalSignIn(external);
    if (problem) {
      fill(status, errorBox({ message: problem }, 'Signing in is not possible here'));
      button.disabled = false;
    }
  });
  return h('section', { class: 'panel', id: 'signin-organization', 'aria-labelledby': 'external-heading' },
    h('h2', { id: 'external-heading' }, 'Sign in with your organization\'s account'),
    h('p', null,
      'This server trusts the identity provider at ', h('code', null, host),
      ': sign in there, and the console gets a token for you (your permissions and directory roles as it issues them).'),
    h('div', { class: 'actions' }, button),
    status);
}

/** Renders the page into `main`; `done()` runs once a token is kept. */
export function renderSignIn(main, { config, reason, done }) {
  const external = config?.external ?? null;
  const local = config?.localUsers !== false;
  const userStatus = h('div', { id: 'signin-status' });
  const tenantInput = h('input', {
    id: 'signin-tenant', class: 'mono', name: 'tenant', value: DEFAULT_TENANT,
    autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'signin-tenant-help',
  });
  const userButton = h('button', { type: 'submit', class: external ? null : 'primary', id: 'signin' }, 'Sign in');
  const userForm = h('form', { class: 'panel', id: 'signin-user', 'aria-labelledby': 'signin-heading' },
    h('h2', { id: 'signin-heading' }, external ? 'Sign in with a local user' : 'Sign in with a user account'),
    h('p', null,
      'A local user of this server, added with ', h('code', null, 'agentry user add NAME --password-stdin'),
      ': the name and password go to the server\'s own sign-in page, and the console gets a token for that user (with the user\'s directory roles).'),
    h('details', null,
      h('summary', null, 'Another tenant'),
      h('div', { class: 'field' },
        h('label', { for: 'signin-tenant' }, 'Tenant id'),
        tenantInput,
        h('p', { class: 'hint', id: 'signin-tenant-help' },
          'The tenant the user was added to (', h('code', null, 'agentry user add --tenant'), ').'))),
    h('div', { class: 'actions' }, userButton),
    userStatus);
  userForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    userButton.disabled = true;
    fill(userStatus, h('p', { class: 'loading muted', role: 'status' }, 'Going to the sign-in page…'));
    const problem = await startSignIn(tenantInput.value.trim() || DEFAULT_TENANT);
    if (problem) {
      fill(userStatus, errorBox({ message: problem }, 'Signing in is not possible here'));
      userButton.disabled = false;
    }
  });

  const devStatus = h('div', { id: 'dev-status' });
  const tokenStatus = h('div', { id: 'token-status' });

  const devButton = h('button', { type: 'button', class: external ? null : 'primary', id: 'dev-signin' },
    'Sign in as the built-in admin');
  devButton.addEventListener('click', async () => {
    devButton.disabled = true;
    fill(devStatus, h('p', { class: 'loading muted', role: 'status' }, 'Signing in…'));
    try {
      const session = await devSession();
      const problem = signIn(session.access_token);
      if (problem) throw new Error(problem);
      fill(devStatus);
      announce('Signed in as the built-in admin.');
      done();
    } catch (error) {
      fill(devStatus, errorBox(error, 'Signing in without a password did not work'));
      devButton.disabled = false;
    }
  });

  const tokenInput = h('textarea', {
    id: 'token-input', class: 'mono', name: 'token', rows: 4, required: true,
    autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'token-help',
  });
  const form = h('form', { class: 'panel', id: 'token-form', 'aria-labelledby': 'token-heading' },
    h('h2', { id: 'token-heading' }, 'Sign in with a bearer token'),
    h('div', { class: 'field' },
      h('label', { for: 'token-input' }, 'Bearer token'),
      tokenInput,
      h('p', { class: 'hint', id: 'token-help' },
        'Mint one with ', h('code', null, 'agentry token --data-dir DIR'),
        ' (the server\'s data folder; add --scopes or --wids for a user with fewer rights), or start the server with ',
        h('code', null, '--print-token'), '. The token stays in this tab only (session storage).')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Use this token')),
    tokenStatus);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const problem = signIn(tokenInput.value);
    if (problem) {
      fill(tokenStatus, errorBox({ message: problem }, 'This token cannot be used'));
      tokenInput.focus();
      return;
    }
    announce('Signed in with the token.');
    done();
  });

  fill(main,
    h('h1', { tabindex: '-1' }, 'Sign in to the Agentry console'),
    reason ? errorBox(reason, reason.title || 'You were signed out') : null,
    h('p', null,
      'The console calls this server\'s Graph API with a bearer token, so it shows and changes only what the token allows.'),
    external ? externalPanel(external) : null,
    local ? userForm : null,
    !local ? null : h('section', { class: 'panel', 'aria-labelledby': 'dev-heading' },
      h('h2', { id: 'dev-heading' }, 'Local development'),
      h('p', null,
        'On a server started with ', h('code', null, '--console-dev-signin'),
        ' that listens on a loopback address (127.0.0.1, [::1]), sign in as the built-in admin user, the user of ',
        h('code', null, 'agentry token'), '\'s default token, without a password.'),
      h('div', { class: 'actions' }, devButton),
      devStatus),
    form);
}
