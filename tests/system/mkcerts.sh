#!/bin/sh
# mkcerts.sh OUTDIR - throwaway TLS material for the SMTP tests.
#
# Makes, with EC P-256 keys and nothing but the openssl CLI:
#   ca.pem / ca.key                         the test CA the client trusts
#   server-localhost.pem / .key             SAN DNS:localhost, IP:127.0.0.1
#   server-wrongname.pem / .key             SAN DNS:mail.wrong.example
#   server-expired.pem / .key               SAN DNS:localhost, expired last year
#   untrusted-ca.pem / .key                 a second CA nobody trusts
#   server-untrusted.pem / .key             SAN DNS:localhost, signed by it
# Each server .pem holds the leaf only; the client trusts ca.pem alone.
# Nothing here is secret: the keys live in a temporary test folder.
set -eu

out=${1:?usage: mkcerts.sh OUTDIR}
mkdir -p "$out"
cd "$out"

# Silence openssl's progress output; errors still reach stderr.
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

make_ca() { # name subject
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 2 -sha256 \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign -out "$1.pem"
}

ext_file() { # san
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$1"
}

make_leaf() { # name ca san
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=invitemail test" -out "$1.csr"
  ext_file "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
    -days 2 -sha256 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

# OpenSSL 3.0's x509 has no -not_before/-not_after, so the expired leaf
# goes through `openssl ca`, which takes explicit start and end dates.
make_expired() { # name ca san
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=invitemail expired" -out "$1.csr"
  mkdir -p ca-db
  : > ca-db/index.txt
  echo 1000 > ca-db/serial
  cat > ca-db/ca.cnf <<EOF
[ca]
default_ca = test_ca
[test_ca]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = leaf
[any]
commonName = supplied
[leaf]
$(ext_file "$3")
EOF
  openssl ca -batch -notext -config ca-db/ca.cnf -cert "$2.pem" -keyfile "$2.key" \
    -startdate 20200101000000Z -enddate 20200102000000Z \
    -in "$1.csr" -out "$1.pem" 2>/dev/null
  rm -rf ca-db "$1.csr"
}

make_ca ca "invitemail test CA"
make_ca untrusted-ca "invitemail untrusted CA"
make_leaf server-localhost ca "DNS:localhost,IP:127.0.0.1"
make_leaf server-wrongname ca "DNS:mail.wrong.example"
make_leaf server-untrusted untrusted-ca "DNS:localhost,IP:127.0.0.1"
make_expired server-expired ca "DNS:localhost,IP:127.0.0.1"
rm -f ./*.srl
