// Which images may have ended the server's engine (predictor_process.ts). An image that ends the engine
// natively would end it again at every resend, and every other client's prediction with it; but an end with
// several images in flight names none of them. So images in flight at an end become suspects for a while and
// run alone meanwhile: an end with one image alone in the engine counts against it, and a second such end
// refuses it (422 ENGINE_FAULT) until it is forgotten.
import { HttpError } from './http_error';
import { sha256Of } from '../hash';

/** How long an image stays a suspect after an end. */
export const SUSPECT_MS = 10 * 60_000;

export const engineFault = () =>
  new HttpError(
    422,
    'ENGINE_FAULT',
    'this image was being predicted each of the two times the prediction engine stopped: it is not ' +
      'predicted again for now (the server log says why the engine stopped)',
  );

export class EngineSuspects {
  private readonly ends = new Map<string, { ends: number; at: number }>();

  /**
   * Records an end of the engine with `lost` in flight; says for each whether it is refused from now on (its
   * second end alone in the engine). Images in flight together are suspects without counting against them.
   */
  blame(lost: Uint8Array[], now = Date.now()): boolean[] {
    this.forget(now);
    return lost.map((bytes) => {
      const h = sha256Of(bytes);
      const before = this.ends.get(h)?.ends ?? 0;
      const ends = lost.length === 1 ? before + 1 : Math.max(before, 1);
      this.ends.set(h, { ends, at: now });
      return ends >= 2;
    });
  }

  /** `bytes` as a suspect now: 'refused', 'alone' (it must run alone), or null. Hashed only while there are any. */
  of(bytes: Uint8Array): 'refused' | 'alone' | null {
    if (!this.ends.size) return null;
    this.forget(Date.now());
    const s = this.ends.get(sha256Of(bytes));
    return !s ? null : s.ends >= 2 ? 'refused' : 'alone';
  }

  private forget(now: number): void {
    for (const [h, s] of this.ends) if (now - s.at > SUSPECT_MS) this.ends.delete(h);
  }
}
