"""OAuth2 logins (docs/oauth2.md): providers, the token endpoint, stored tokens, SASL, the hosted flow.

A server with ``auth_type`` oauth2 logs in to IMAP and SMTP with SASL OAUTHBEARER (RFC 7628) where the
server offers it, else XOAUTH2 (Google's and Microsoft's), sending an access token that
``tokens.access_token`` keeps fresh from the stored refresh token. Tokens come from the hosted flow
(``flow``: authorization code with PKCE, the callback at ``/oauth2/callback``) or from the caller's
own app (``oauth2_refresh_token`` on create or update).
"""
