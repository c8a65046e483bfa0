#!/usr/bin/env bash
# The README's "Without Docker" steps (systemd units, PostgreSQL, nginx), tried as written in a
# Debian 12 container with systemd as PID 1 (debian-host/), on a clone of this repository's
# HEAD; then the checks of run.sh from this machine, through the container's nginx on
# 127.0.0.1:80/443/8443.
#
#   bash tests/deploy_trial/systemd.sh      # CNR_TRIAL_STANDINS=1: see run.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
WORK=$(mktemp -d /tmp/cnrbot-systemd-trial.XXXXXX)
NAME=cnrbot-debian-host
step() { printf '\n== %s\n' "$*"; }

BASE=debian:bookworm
[ "${CNR_TRIAL_STANDINS:-0}" = 1 ] && BASE=local/debian:bookworm
cp -r "$HERE/debian-host" "$WORK/host"
cp /etc/ssl/certs/ca-certificates.crt "$WORK/host/host-ca.crt"
docker build -q --build-arg BASE=$BASE -t cnrbot-debian-host "$WORK/host" >/dev/null
git clone -q "$REPO" "$WORK/cnrbot"
HOSTIP=$(ip -4 addr show docker0 | awk '/inet /{print $2}' | cut -d/ -f1)
TOKEN="123456:TRIAL-$(openssl rand -hex 8)"
"$PY" "$HERE/fake_bot_api.py" 18999 "$TOKEN" "$WORK/fake.json" &
FAKE=$!
cleanup() { docker rm -f $NAME >/dev/null 2>&1 || true; kill $FAKE 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
# systemd in a container: every capability this machine grants (--privileged asks for one more
# than some sandboxes have), the host's cgroups, /run on tmpfs.
docker run -d --name $NAME --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined \
  --security-opt apparmor=unconfined --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
  --tmpfs /run --tmpfs /run/lock -p 127.0.0.1:80:80 -p 127.0.0.1:443:443 -p 127.0.0.1:8443:8443 \
  cnrbot-debian-host >/dev/null
docker cp "$WORK/cnrbot" $NAME:/root/cnr-sante-bot
for i in $(seq 30); do docker exec $NAME systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded' && break; sleep 1; done

step "the README's steps, as root in /root/cnr-sante-bot"
PGPW=$(openssl rand -hex 16)
docker exec -i -e PGPW="$PGPW" -e TOKEN="$TOKEN" -e HOSTIP="$HOSTIP" $NAME bash -euo pipefail <<'STEPS'
cd /root/cnr-sante-bot
set -x
useradd --system --create-home --home-dir /var/lib/cnrbot --shell /usr/sbin/nologin cnrbot
python3 -m venv /opt/cnrbot/.venv && /opt/cnrbot/.venv/bin/pip install --quiet .
install -d -m 0750 -g cnrbot /etc/cnrbot
install -m 0640 -g cnrbot deploy/.env.example /etc/cnrbot/cnrbot.env
{ set +x; } 2>/dev/null
sed -i -e "s|^# CNR_DATABASE_URL=.*|CNR_DATABASE_URL=postgresql+asyncpg://cnrbot:$PGPW@127.0.0.1:5432/cnrbot|" \
  -e "s|^PUBLIC_URL=.*|PUBLIC_URL=https://bot.example.fr|" \
  -e "s|^# CNR_SECRET_KEY=.*|CNR_SECRET_KEY=$(openssl rand -hex 32)|" \
  -e "s|^# CNR_WEBHOOK_SECRET=.*|CNR_WEBHOOK_SECRET=$(openssl rand -hex 24)|" \
  -e "s|^CNR_WEBHOOK_PATH=.*|CNR_WEBHOOK_PATH=/tg/$(openssl rand -hex 12)|" \
  -e "s|^# CNR_TELEGRAM_TOKEN=.*|CNR_TELEGRAM_TOKEN=$TOKEN|" \
  -e "s|^# CNR_TELEGRAM_API_BASE_URL=.*|CNR_TELEGRAM_API_BASE_URL=http://$HOSTIP:18999/bot|" \
  -e "s|^# CNR_WEB_PUBLIC_URL=.*|CNR_WEB_PUBLIC_URL=https://contribuer.ars.example.fr/|" \
  /etc/cnrbot/cnrbot.env
runuser -u postgres -- psql -q -c "CREATE ROLE cnrbot LOGIN PASSWORD '$PGPW'" -c "CREATE DATABASE cnrbot OWNER cnrbot"
set -x
cp deploy/systemd/*.service /etc/systemd/system/ && systemctl daemon-reload
systemctl enable --now cnrbot-webhook@8080 cnrbot-web@8090 cnrbot-web@8091 cnrbot-console
install -d /etc/nginx/certs
{ set +x; } 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bot.example.fr" \
  -addext "subjectAltName=DNS:bot.example.fr,DNS:contribuer.ars.example.fr,DNS:console.bot.example.fr" \
  -keyout /etc/nginx/certs/privkey.pem -out /etc/nginx/certs/fullchain.pem 2>/dev/null
set -x
cp deploy/nginx.conf /etc/nginx/conf.d/cnrbot.conf
sed -i -e 's|server webhook:8080;|server 127.0.0.1:8080;|' -e 's|server console:8081;|server 127.0.0.1:8081;|' \
  -e 's|server web:8090;|server 127.0.0.1:8090;\n    server 127.0.0.1:8091;|' /etc/nginx/conf.d/cnrbot.conf
nginx -t && systemctl reload nginx
cnrbot() {  # the README's alias (an alias is not expanded in a script), --pipe for no terminal
  systemd-run --quiet --pipe --wait --collect --uid=cnrbot --gid=cnrbot \
    -p EnvironmentFile=/etc/cnrbot/cnrbot.env -p WorkingDirectory=/var/lib/cnrbot /opt/cnrbot/.venv/bin/cnrbot "$@"
}
cnrbot staff add admin@ars.example.fr --role admin --generate-password > /root/staff.txt
sed -e 's/^code = "HDF-2022"/code = "HDF-2026"/' -e 's/^opens_on = .*/opens_on = 2026-11-01/' \
  -e 's/^closes_on = .*/closes_on = 2027-03-31/' storage/campaigns/hauts-de-france-2022.toml > /etc/cnrbot/my-campaign.toml
chgrp cnrbot /etc/cnrbot/my-campaign.toml && chmod 0640 /etc/cnrbot/my-campaign.toml
cnrbot campaign load /etc/cnrbot/my-campaign.toml
{ set +x; } 2>/dev/null
systemctl --no-pager --plain list-units 'cnrbot*'
for port in 8080 8090 8091 8081; do
  for i in $(seq 30); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 1; done
  for p in healthz readyz; do test "$(curl -s "http://127.0.0.1:$port/$p" -o /dev/null -w '%{http_code}')" = 200; done
  curl -s "http://127.0.0.1:1$port/metrics" | grep -q '^cnrbot_'
  echo "port $port: /healthz /readyz 200; metrics on 127.0.0.1:1$port"
done
open=$(ss -Hltn | awk '{print $4}' | grep -vE '^(127\.0\.0\.1|\[::1\]):' | grep -vE ':(80|443|8443)$' || true)
[ -z "$open" ] || { echo "listening beyond localhost: $open"; exit 1; }
echo "nothing but nginx listens beyond localhost"
STEPS
PASSWORD=$(docker exec $NAME sed -n 's/^mot de passe.*: //p' /root/staff.txt)

step "checks: through nginx (TLS), from this machine"
"$PY" "$HERE/browse.py" "$PASSWORD"
WP=$(docker exec $NAME sed -n 's/^CNR_WEBHOOK_PATH=//p' /etc/cnrbot/cnrbot.env)
R=(--resolve bot.example.fr:443:127.0.0.1)
test "$(curl -sk -o /dev/null -w '%{http_code}' "${R[@]}" -X POST "https://bot.example.fr$WP" -d '{}')" = 403
echo "webhook path from an address outside Telegram's: 403"
"$PY" -c "import json, sys; d = json.load(open(sys.argv[1])); print('Bot API calls:', d['calls']); assert d['calls'].get('setWebhook')" "$WORK/fake.json"

step "a worker killed is restarted by systemd"
docker exec $NAME bash -c 'systemctl kill -s KILL cnrbot-web@8090
for i in $(seq 30); do sleep 1; curl -sf -o /dev/null http://127.0.0.1:8090/readyz && break; done
curl -sf http://127.0.0.1:8090/readyz && echo " after SIGKILL, restarts: $(systemctl show -p NRestarts --value cnrbot-web@8090)"'
step "the systemd steps work as written"
