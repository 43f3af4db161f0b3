// "Forget token" clears everything the previous clinician was shown and drops what was still on its way for them.
// On a shared workstation that was a re-check at another operating point, a heat map or a History page answered
// after the forgetting: drawn on a removed card, said to the next clinician's screen reader, or drawn over
// "Cleared with the token".
import * as api from './api';
import { clearHistory } from './history_view';
import { clearLargeView } from './large_view';
import { announce, clearAnnouncements } from './status_line';

let era = new AbortController();

/** Aborted when the token is forgotten: requests made for what the page shows now take it. */
export function eraSignal(): AbortSignal {
  return era.signal;
}

/** Forgets the token and clears the page (`clearViews`: the Analyze view's cards), then says so. */
export function forgetEverything(clearViews: () => void): void {
  era.abort();
  era = new AbortController();
  api.forgetToken();
  clearViews();
  clearHistory();
  clearLargeView();
  // The log region kept the last messages (a file's name and its finding): a reader could still go back to them.
  clearAnnouncements();
  announce('Token forgotten, and the results on this page cleared: the next request asks for a token.');
}
