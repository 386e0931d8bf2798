/**
 * @module stack/recent
 *
 * The last few things of a kind (activity, errors), newest last: a bounded
 * list, so a crash loop or an error storm costs the stack no more memory
 * than its bound.
 */
export class Recent<T> {
  private readonly items: T[] = [];

  constructor(private readonly bound: number) {}

  add(...items: T[]): void {
    this.items.push(...items);
    if (this.items.length > this.bound) this.items.splice(0, this.items.length - this.bound);
  }

  list(): T[] {
    return [...this.items];
  }
}
