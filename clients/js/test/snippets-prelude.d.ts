// The app's own functions that the README's snippets call (declared, as an app defines them).
declare function render(doc: unknown): void;
declare function showUnsaved(count: number): void;
declare function showPeople(peers: Array<Record<string, unknown>>): void;
