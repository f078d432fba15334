/**
 * @module
 * The pages' languages: one message catalogue per language (en.ts, de.ts), {@link translate} to
 * fill a message's `{placeholders}`, and the choice of language for a request
 * ({@link pickLanguage}: `?lang=` forces it, else `Accept-Language` with its q-values; `de-AT` is
 * German). The server renders the pages in that language (`<html lang>`); the pages' scripts read
 * `<html lang>` and take their texts from the same catalogue.
 *
 * Browser-safe: no Node imports, bundled into the pages' scripts.
 */
import { de } from './de.js';
import { en, type MessageKey } from './en.js';

export type { MessageKey } from './en.js';

/** The languages the app speaks; the first is the default. */
export const LANGUAGES = ['en', 'de'] as const;
export type Lang = (typeof LANGUAGES)[number];
export const DEFAULT_LANGUAGE: Lang = 'en';

/** Values of a message's placeholders. */
export type Params = Readonly<Record<string, string | number>>;

/** A message to translate later: its key and placeholder values. */
export interface Message {
  key: MessageKey;
  params?: Params;
  /** Placeholder values that are messages themselves (translated into the same language). */
  parts?: Readonly<Record<string, Message>>;
}

/** `message` in `lang`: its parts translated first, then its placeholders filled. */
export function render(lang: Lang, message: Message): string {
  const parts: Record<string, string> = {};
  for (const [name, part] of Object.entries(message.parts ?? {})) parts[name] = render(lang, part);
  return translate(lang, message.key, { ...message.params, ...parts });
}

export const CATALOGUES: Readonly<Record<Lang, Readonly<Record<MessageKey, string>>>> = { en, de };

/** True for a language the app speaks. */
export function isLang(value: unknown): value is Lang {
  return typeof value === 'string' && (LANGUAGES as readonly string[]).includes(value);
}

/** The `{placeholder}` names of a message, sorted and without repeats. */
export function placeholders(text: string): string[] {
  const names = new Set<string>();
  for (const part of text.split('{').slice(1)) {
    const end = part.indexOf('}');
    if (end > 0) names.add(part.slice(0, end));
  }
  return [...names].sort();
}

/** Fills `{name}` in `text` with `params.name`; a placeholder without a value stays as it is. */
export function fill(text: string, params: Params = {}): string {
  let out = '';
  let rest = text;
  for (;;) {
    const open = rest.indexOf('{');
    const close = open === -1 ? -1 : rest.indexOf('}', open);
    if (close === -1) return out + rest;
    const name = rest.slice(open + 1, close);
    out += rest.slice(0, open) + (Object.hasOwn(params, name) ? String(params[name]) : `{${name}}`);
    rest = rest.slice(close + 1);
  }
}

/** The message `key` in `lang` (English when the catalogue lacks it), placeholders filled. */
export function translate(lang: Lang, key: MessageKey, params?: Params): string {
  const text = CATALOGUES[lang]?.[key] ?? en[key] ?? key;
  return fill(text, params);
}

/** A function `t(key, params)` bound to `lang`. */
export type Translator = (key: MessageKey, params?: Params) => string;
export function translator(lang: Lang): Translator {
  return (key, params) => translate(lang, key, params);
}

/**
 * The language of an `Accept-Language` header: the supported language with the highest q-value
 * (a region or script after the language counts as the language: `de-CH` is `de`; `*` stands for
 * the default); the first listed on a tie; the default when none fits.
 */
export function negotiateLanguage(header: string | undefined | null): Lang {
  if (!header) return DEFAULT_LANGUAGE;
  let best: Lang | undefined;
  let bestQ = 0;
  for (const item of header.split(',').slice(0, 32)) {
    const [range = '', ...attrs] = item.split(';').map((s) => s.trim());
    let q = 1;
    for (const attr of attrs) {
      const [name, value] = attr.split('=').map((s) => s.trim());
      if (name?.toLowerCase() === 'q') q = value !== undefined && value !== '' && Number.isFinite(Number(value)) ? Number(value) : 0;
    }
    if (!(q > 0) || q > 1) continue;
    const primary = range.toLowerCase().split('-')[0];
    const lang = primary === '*' ? DEFAULT_LANGUAGE : primary;
    if (isLang(lang) && q > bestQ) {
      best = lang;
      bestQ = q;
    }
  }
  return best ?? DEFAULT_LANGUAGE;
}

/**
 * The language of a request: `?lang=de|en` when given (it forces the language, and the pages keep
 * it in their links), else `Accept-Language`.
 * @returns the language and whether `?lang=` chose it
 */
export function pickLanguage(query: unknown, acceptLanguage: string | undefined | null): { lang: Lang; forced: boolean } {
  if (isLang(query)) return { lang: query, forced: true };
  return { lang: negotiateLanguage(acceptLanguage), forced: false };
}

/** The language of a page from its `<html lang>` (the server chose it), for the pages' scripts. */
export function pageLanguage(htmlLang: string | null | undefined): Lang {
  const primary = (htmlLang ?? '').toLowerCase().split('-')[0];
  return isLang(primary) ? primary : DEFAULT_LANGUAGE;
}
