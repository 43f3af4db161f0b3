// Heat maps of the last few predictions, in memory only: with --no-store-images nothing is
// written to disk, yet the page can still fetch the heat map it was just given a URL for.

export class RecentImages {
  private readonly map = new Map<string, { png: Buffer; expires: number }>();

  constructor(
    private readonly capacity = 64,
    private readonly ttlMs = 10 * 60_000,
  ) {}

  set(id: string, png: Buffer): void {
    this.map.delete(id);
    this.map.set(id, { png, expires: Date.now() + this.ttlMs });
    // Map iterates in insertion order, so the first keys are the oldest.
    for (const key of this.map.keys()) {
      if (this.map.size <= this.capacity) break;
      this.map.delete(key);
    }
  }

  get(id: string): Buffer | null {
    const hit = this.map.get(id);
    if (!hit) return null;
    if (hit.expires < Date.now()) {
      this.map.delete(id);
      return null;
    }
    return hit.png;
  }
}
