/**
 * @module
 * The language of each request (src/common/i18n/): `?lang=de|en` forces it, else `Accept-Language`
 * decides. Views get `lang` (for `<html lang>`), `t(key, params)`, and `langQuery` (`?lang=de` when
 * forced, so links between the viewer and the settings keep it); error answers use
 * {@link languageOf}. The ctrlX UI's own language setting is not readable by the app: it is not
 * documented where the UI keeps it, so the browser's `Accept-Language` stands for it.
 */
import type { RequestHandler, Response } from 'express';
import { DEFAULT_LANGUAGE, isLang, type Lang, pickLanguage, translator } from '../common/i18n/index.js';

/** The language chosen for the request `res` answers (English before the middleware ran). */
export function languageOf(res: Response): Lang {
  const lang: unknown = res.locals.lang;
  return isLang(lang) ? lang : DEFAULT_LANGUAGE;
}

/** Chooses the request's language and hands it and `t` to the views. */
export const chooseLanguage: RequestHandler = (req, res, next) => {
  const { lang, forced } = pickLanguage(req.query.lang, req.get('accept-language'));
  res.locals.lang = lang;
  res.locals.t = translator(lang);
  res.locals.langQuery = forced ? `?lang=${lang}` : '';
  res.vary('Accept-Language');
  res.setHeader('Content-Language', lang);
  next();
};
