/** The pages of the login endpoints: errors, each with a way to try again, and "signed out". */
import type { Response } from 'express';
import { escapeHtml, HTML_HEADERS, htmlPage, linkParagraph } from '../http/html.js';

export function sendErrorPage(res: Response, status: number, title: string, detail: string, retryUrl: string | null): void {
  res.status(status).set(HTML_HEADERS).send(htmlPage(title, `<p>${escapeHtml(detail)}</p>${linkParagraph(retryUrl, 'Sign in again')}`));
}

/** Where sign-out lands by default: a protected page would bounce straight back to the IdP's login. */
export function sendSignedOutPage(res: Response, signInUrl: string): void {
  res.status(200).set(HTML_HEADERS).send(htmlPage('You are signed out', `<p>Your session here has ended.</p>${linkParagraph(signInUrl, 'Sign in again')}`));
}
