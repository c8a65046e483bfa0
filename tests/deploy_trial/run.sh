#!/usr/bin/env bash
# The README's "Deployment and scale-out" section, tried step by step with Docker, on a clone of
# this repository's HEAD: fill in deploy/.env, certificates, `up -d --build`, a staff account, a
# campaign, then checks (a citizen's whole contribution with and without JavaScript through nginx
# and TLS, the staff console on its internal port, the Telegram webhook behind its secret path
# and header, metrics not published, a backup and a restore), then `down -v`.
#
#   bash tests/deploy_trial/run.sh            # needs dockerd and a compose client (v2 or 1.x)
#
# Not part of the test suite (it builds images: minutes). Where Docker Hub is unreachable (this
# project's sandbox), set CNR_TRIAL_STANDINS=1: python:3.11-slim, postgres:15 and nginx:1.27 are
# then built locally from Debian bookworm's packages (standins/), with the host's CA bundle for
# an intercepting proxy. Telegram is the fake Bot API of the tests, on the docker0 address.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
WORK=$(mktemp -d /tmp/cnrbot-deploy-trial.XXXXXX)
if docker compose version >/dev/null 2>&1; then DC=(docker compose); else DC=(docker-compose); fi
step() { printf '\n== %s\n' "$*"; }

if [ "${CNR_TRIAL_STANDINS:-0}" = 1 ]; then
  step "stand-in base images (Docker Hub unreachable)"
  if ! docker image inspect local/debian:bookworm >/dev/null 2>&1; then
    debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian >/dev/null
    tar -C "$WORK/rootfs" -c . | docker import - local/debian:bookworm >/dev/null
    rm -rf "$WORK/rootfs"
  fi
  cp -r "$HERE/standins" "$WORK/standins"
  cp /etc/ssl/certs/ca-certificates.crt "$WORK/standins/python/host-ca.crt"
  docker build -q -t python:3.11-slim "$WORK/standins/python" >/dev/null
  docker build -q -t postgres:15 "$WORK/standins/postgres" >/dev/null
  docker build -q -t nginx:1.27 "$WORK/standins/nginx" >/dev/null
fi

git clone -q "$REPO" "$WORK/cnrbot"
cd "$WORK/cnrbot"
HOSTIP=$(ip -4 addr show docker0 | awk '/inet /{print $2}' | cut -d/ -f1)
TOKEN="123456:TRIAL-$(openssl rand -hex 8)"
"$PY" "$HERE/fake_bot_api.py" 18999 "$TOKEN" "$WORK/fake.json" &
FAKE=$!
cleanup() {
  "${DC[@]}" -f deploy/compose.yaml down -v --remove-orphans >/dev/null 2>&1 || true
  kill "$FAKE" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step "1. cp deploy/.env.example deploy/.env, and fill in the secrets"
cp deploy/.env.example deploy/.env
sed -i -e "s|^POSTGRES_PASSWORD=.*|POSTGRES_PASSWORD=$(openssl rand -hex 16)|" \
  -e "s|^# CNR_SECRET_KEY=.*|CNR_SECRET_KEY=$(openssl rand -base64 48 | tr -d '\n/+=')|" \
  -e "s|^# CNR_WEBHOOK_SECRET=.*|CNR_WEBHOOK_SECRET=$(openssl rand -hex 24)|" \
  -e "s|^CNR_WEBHOOK_PATH=.*|CNR_WEBHOOK_PATH=/tg/$(openssl rand -hex 12)|" \
  -e "s|^# CNR_TELEGRAM_TOKEN=.*|CNR_TELEGRAM_TOKEN=$TOKEN|" \
  -e "s|^# CNR_TELEGRAM_API_BASE_URL=.*|CNR_TELEGRAM_API_BASE_URL=http://$HOSTIP:18999/bot|" \
  -e "s|^# CNR_WEB_PUBLIC_URL=.*|CNR_WEB_PUBLIC_URL=https://contribuer.ars.example.fr/|" \
  deploy/.env
grep -E "^(POSTGRES_PASSWORD|CNR_SECRET_KEY|CNR_WEBHOOK_SECRET|CNR_WEBHOOK_PATH|CNR_TELEGRAM_TOKEN)=." \
  deploy/.env | sed 's/=.*/ set/'

step "2. the certificates nginx serves, in deploy/certs/"
mkdir -p deploy/certs
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bot.example.fr" \
  -addext "subjectAltName=DNS:bot.example.fr,DNS:contribuer.ars.example.fr,DNS:console.bot.example.fr" \
  -keyout deploy/certs/privkey.pem -out deploy/certs/fullchain.pem 2>/dev/null

step "3. ${DC[*]} -f deploy/compose.yaml up -d --build"
time "${DC[@]}" -f deploy/compose.yaml up -d --build --quiet-pull 2>&1 | grep -E "^(Creating|Starting|Successfully)|error" || true

step "4. a staff account"
"${DC[@]}" -f deploy/compose.yaml run --rm -T migrate staff add admin@ars.example.fr --role admin \
  --generate-password | tee "$WORK/staff.txt" | grep -v "mot de passe"
PASSWORD=$(sed -n 's/^mot de passe.*: //p' "$WORK/staff.txt")

step "5. the agency's campaign (here the shipped one, open from 1 November 2026)"
sed -e 's/^code = "HDF-2022"/code = "HDF-2026"/' -e 's/^opens_on = .*/opens_on = 2026-11-01/' \
  -e 's/^closes_on = .*/closes_on = 2027-03-31/' storage/campaigns/hauts-de-france-2022.toml \
  >"$WORK/campaign.toml"
"${DC[@]}" -f deploy/compose.yaml run --rm -T -v "$WORK/campaign.toml:/tmp/campaign.toml:ro" \
  migrate campaign load /tmp/campaign.toml

step "checks: every service up and ready"
for i in $(seq 60); do
  [ "$("${DC[@]}" -f deploy/compose.yaml ps | grep -c 'health: starting')" = 0 ] && break
  sleep 2
done
"${DC[@]}" -f deploy/compose.yaml ps
for c in $(docker ps --filter "label=com.docker.compose.project=cnrbot" --format '{{.Names}}' | grep -E 'web|webhook|console'); do
  port=$(case $c in *webhook*) echo 8080;; *console*) echo 8081;; *) echo 8090;; esac)
  docker exec "$c" python -c "
import urllib.request as u
for p in ('healthz', 'readyz'):
    assert u.urlopen('http://127.0.0.1:$port/' + p, timeout=5).status == 200
assert b'cnrbot_' in u.urlopen('http://127.0.0.1:9100/metrics', timeout=5).read()
print('$c: /healthz /readyz 200, /metrics on 9100 (compose network only)')"
done
published=$(docker ps --filter "label=com.docker.compose.project=cnrbot" --format '{{.Names}} {{.Ports}}' | grep -v proxy | grep -c -- '->' || true)
[ "$published" = 0 ] && echo "no port published but nginx's"

step "checks: through nginx (TLS)"
R=(--resolve bot.example.fr:443:127.0.0.1 --resolve contribuer.ars.example.fr:443:127.0.0.1
  --resolve contribuer.ars.example.fr:80:127.0.0.1 --resolve console.bot.example.fr:443:127.0.0.1)
WP=$(sed -n 's/^CNR_WEBHOOK_PATH=//p' deploy/.env)
WS=$(sed -n 's/^CNR_WEBHOOK_SECRET=//p' deploy/.env)
test "$(curl -sk -o /dev/null -w '%{http_code}' "${R[@]}" -X POST "https://bot.example.fr$WP" -d '{}')" = 403
echo "webhook path from an address outside Telegram's: 403"
test "$(curl -s -o /dev/null -w '%{redirect_url}' "${R[@]}" http://contribuer.ars.example.fr/)" = https://contribuer.ars.example.fr/
echo "web chat over http: redirected to https"
test "$(curl -sk -o /dev/null -w '%{http_code}' "${R[@]}" https://console.bot.example.fr/login)" = 404
echo "console on the public port: 404"
"$PY" "$HERE/browse.py" "$PASSWORD"

step "checks: a Telegram update, on a webhook worker, with and without the secret header"
WEBHOOK=$(docker ps --filter label=com.docker.compose.project=cnrbot \
  --filter label=com.docker.compose.service=webhook --format '{{.Names}}' | head -1)
docker exec -e WP="$WP" -e WS="$WS" "$WEBHOOK" python -c "
import json, os, urllib.error, urllib.request as u
update = {'update_id': 5001, 'message': {'message_id': 1, 'date': 1764500000, 'text': '/start',
          'chat': {'id': 4242, 'type': 'private'}, 'from': {'id': 4242, 'is_bot': False, 'first_name': 'C'}}}
def post(secret):
    r = u.Request('http://127.0.0.1:8080' + os.environ['WP'], data=json.dumps(update).encode(),
                  headers={'Content-Type': 'application/json', 'X-Telegram-Bot-Api-Secret-Token': secret})
    try:
        return u.urlopen(r, timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code
assert post('wrong') == 403
assert post(os.environ['WS']) == 200
print('wrong secret: 403; right secret: 200')"
for i in $(seq 20); do grep -q '"sendMessage"' "$WORK/fake.json" && break; sleep 1; done
"$PY" -c "import json, sys; d = json.load(open(sys.argv[1])); print('Bot API calls:', d['calls']); assert d['calls'].get('sendMessage') and d['calls'].get('setWebhook')" "$WORK/fake.json"

step "6. a backup, then a restore (workers stopped)"
mkdir -p "$WORK/backups"
U=(--user "$(id -u):$(id -g)" -v "$WORK/backups:/backups")
"${DC[@]}" -f deploy/compose.yaml run --rm -T "${U[@]}" migrate db backup "/backups/cnr-$(date +%F).dump"
"${DC[@]}" -f deploy/compose.yaml stop webhook web console
"${DC[@]}" -f deploy/compose.yaml run --rm -T "${U[@]}" migrate db restore "/backups/cnr-$(date +%F).dump"
"${DC[@]}" -f deploy/compose.yaml up -d
"${DC[@]}" -f deploy/compose.yaml run --rm -T migrate campaign list | grep "HDF-2026.*2 contributions"

step "the deployment section works as written"
