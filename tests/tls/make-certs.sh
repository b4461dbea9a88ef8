#!/bin/sh
# make-certs.sh DIR - a throwaway CA, a server certificate for localhost/127.0.0.1 and a client
# certificate, for the TLS and mTLS tests; a certificate of the same CA that is not for client
# authentication, and a client certificate of another CA, which servers must refuse. Nothing here
# is for production.
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
[ -s notclient.crt ] && exit 0
gen() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
  -days 3 -subj /CN=coffer-test-ca 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
printf 'extendedKeyUsage=clientAuth\n' >client.ext
gen server localhost
gen client coffer-test-client
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 3 -extfile server.ext 2>/dev/null
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 3 -extfile client.ext 2>/dev/null
# a second CA whose client certificate the server must refuse
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key -out other-ca.crt \
  -days 3 -subj /CN=other-ca 2>/dev/null
gen stranger stranger
openssl x509 -req -in stranger.csr -CA other-ca.crt -CAkey other-ca.key -CAcreateserial -out stranger.crt -days 3 -extfile client.ext 2>/dev/null
# signed by the right CA, but for servers only: refused as a client certificate
gen notclient not-a-client
openssl x509 -req -in notclient.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out notclient.crt -days 3 -extfile server.ext 2>/dev/null
chmod 600 ./*.key
