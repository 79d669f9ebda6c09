/** What every view gets, and what it is. */
export interface Me {
  kind: 'user' | 'robot';
  name: string;
  groups: string[];
  admin: boolean;
  /** May list and watch session recordings (admins and the recording viewer groups). */
  recordingViewer?: boolean;
  /** How many namespace profiles the caller may ask for namespaces with (absent: not said). */
  namespaceProfiles?: number;
  via: 'session' | 'token';
  clusters: string[];
  user?: { id: string; email: string; name: string };
  csrfToken?: string;
  sessionExpiresAt?: string;
}

export interface ViewContext {
  me: Me;
  /** Where the view draws (below the heading the shell drew). */
  into: HTMLElement;
  navigate: (path: string) => void;
}

export type Render = (ctx: ViewContext) => Promise<void>;

export interface View {
  path: string;
  title: string;
  section: 'you' | 'admin';
  /** Shown in the navigation only to whom this says (the server still decides at every call). */
  shownTo?: (me: Me) => boolean;
  /** The view's module, fetched the first time it is shown. */
  load: () => Promise<Render>;
}
