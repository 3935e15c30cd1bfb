#!/usr/bin/python3
"""An SMTP server for the outreach tests (docs/OUTREACH.md), on 127.0.0.1,
built on Debian's python3-aiosmtpd. Every message it accepts is appended to
LOG as one JSON line ({"from", "to", "tls", "auth", "data"}; tls: it came
after STARTTLS; auth: the client logged in) and the file is fsync'd before
the 250 answer, so the log holds exactly what the relay took, whatever
happens to the sender afterwards.

What it answers is read from CONTROL (a file, read at each DATA) so a test
can change it while the server runs:
  ok           250 (the default, also when CONTROL is missing or empty)
  temp         451 4.3.0 (a temporary failure: nothing logged)
  perm         554 5.7.1 (a permanent refusal: nothing logged)
  drop         close the connection at DATA without an answer (nothing logged)
  slow MS      log, wait MS milliseconds, then 250

usage: smtp_sink.py --port N|0 --port-file FILE --log FILE --control FILE
       [--tls-cert PEM --tls-key KEY]  (offer STARTTLS)
       [--auth USER:PASSWORD]  (require AUTH, after STARTTLS)
"""
import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def mode(path):
    try:
        with open(path, encoding='utf-8') as fh:
            words = fh.read().split()
    except OSError:
        return ['ok']
    return words or ['ok']


class Handler:
    def __init__(self, args):
        self.args = args

    async def handle_DATA(self, server, session, envelope):
        m = mode(self.args.control)
        if m[0] == 'temp':
            return '451 4.3.0 try again later'
        if m[0] == 'perm':
            return '554 5.7.1 message refused'
        if m[0] == 'drop':
            server.transport.abort()
            return '421 4.3.0 closing' 
        data = envelope.original_content or envelope.content
        if isinstance(data, bytes):
            data = data.decode('utf-8', 'replace')
        line = json.dumps({'from': envelope.mail_from, 'to': envelope.rcpt_tos,
                           'tls': session.ssl is not None,
                           'auth': session.authenticated, 'data': data}) + '\n'
        with open(self.args.log, 'a', encoding='utf-8') as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        if m[0] == 'slow' and len(m) > 1:
            await asyncio.sleep(int(m[1]) / 1000)
        return '250 2.0.0 accepted'


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--port-file', required=True)
    ap.add_argument('--log', required=True)
    ap.add_argument('--control', required=True)
    ap.add_argument('--tls-cert')
    ap.add_argument('--tls-key')
    ap.add_argument('--auth')
    args = ap.parse_args()
    user, _, password = (args.auth or '').partition(':')

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and
              auth_data.password.decode() == password)
        return AuthResult(success=ok)

    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    handler = Handler(args)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname='sink.test', tls_context=tls,
                     require_starttls=tls is not None, decode_data=False,
                     authenticator=authenticator if args.auth else None,
                     auth_required=bool(args.auth)),
        '127.0.0.1', args.port)
    port = server.sockets[0].getsockname()[1]
    tmp = args.port_file + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as fh:
        fh.write(f'{port}\n')
    os.rename(tmp, args.port_file)
    async with server:
        await server.serve_forever()


if __name__ == '__main__':
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
