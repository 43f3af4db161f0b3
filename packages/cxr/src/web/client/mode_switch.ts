// The "Process on this computer" switch: where the films go, said under it, and the browser's copy of the model
// loaded when it is turned on.
import * as api from './api';
import { $ } from './dom';
import { preloadLocalModel } from './local_model';
import { showStatus } from './status_line';

/**
 * Where the films go, under the switch and kept true: in the default mode every answer is recorded in the server's
 * audit log (History), which the page said only once the switch had been turned on and off again. Returns its
 * update.
 */
function showMode(toggle: HTMLInputElement): () => void {
  const line = $('#mode-note');
  const update = () => {
    line.textContent = toggle.checked
      ? 'While this is on, nothing is sent to the server or recorded in its audit log.'
      : 'While this is off, images are sent to the server and every answer is recorded in its audit log (see ' +
        `History)${api.tokenState().held ? ', with the name of the token in use' : ''}.`;
  };
  api.onTokenChange(update);
  update();
  return update;
}

/** Wires the switch: `model` gives the model info the browser's copy is loaded from. */
export function setUpModeSwitch(model: () => Promise<api.ModelInfo>): void {
  const toggle = $('#local-mode') as HTMLInputElement;
  const mode = showMode(toggle);
  // A load ending after the switch changed says nothing: "never leave it" stood under a switch since turned off.
  let switched = 0;
  const loadLocal = () => {
    const mine = switched;
    const current = () => mine === switched && toggle.checked;
    showStatus('Loading the model into this browser…');
    model()
      .then(preloadLocalModel)
      .then(
        () => current() && showStatus('Model loaded: images are analyzed on this computer and never leave it.'),
        // The line names the button where the server wants a token (api.ts TOKEN_WORDS): it is beside the line.
        (e: unknown) =>
          current() &&
          showStatus(`Could not load the model in the browser: ${api.humanError(e)}`, true, {
            label: api.needsToken(e) ? 'Enter token' : 'Try again',
            run: () => {
              if (toggle.checked) loadLocal();
            },
          }),
      );
  };
  toggle.addEventListener('change', () => {
    switched += 1;
    mode();
    if (!toggle.checked) {
      showStatus('Images are sent to the server, analyzed and logged.');
      return;
    }
    loadLocal();
  });
}
