// The sign-in page. Local user accounts (and the authorization-code flow)
// are not built yet: the console signs in with a pasted bearer token, or,
// on a loopback server started with --console-dev-signin, as the built-in
// admin user without a password.

import { h, fill, errorBox, announce } from './dom.js';
import { devSession } from './graph.js';
import { signIn } from './session.js';

/** Renders the page into `main`; `done()` runs once a token is kept. */
export function renderSignIn(main, { reason, done }) {
  const devStatus = h('div', { id: 'dev-status' });
  const tokenStatus = h('div', { id: 'token-status' });

  const devButton = h('button', { type: 'button', class: 'primary', id: 'dev-signin' },
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
    reason ? errorBox(reason, 'You were signed out') : null,
    h('p', null,
      'The console calls this server\'s Graph API with a bearer token, so it shows and changes only what the token allows. ',
      'Local user accounts and signing in with a password are not built yet.'),
    h('section', { class: 'panel', 'aria-labelledby': 'dev-heading' },
      h('h2', { id: 'dev-heading' }, 'Local development'),
      h('p', null,
        'On a server started with ', h('code', null, '--console-dev-signin'),
        ' that listens on a loopback address (127.0.0.1, [::1]), sign in as the built-in admin user, the user of ',
        h('code', null, 'agentry token'), '\'s default token, without a password.'),
      h('div', { class: 'actions' }, devButton),
      devStatus),
    form);
}
