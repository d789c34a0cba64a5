#!/usr/bin/env bash
# Deploy Subliminal to Google Cloud Run, as the original was deployed: Firestore behind the
# Datastore service, Pub/Sub between the API and executors, updates pushed to the API.
#
#   GOOGLE_PROJECT_ID=my-project IMAGE=europe-west1-docker.pkg.dev/my-project/sublim/sublim:0.1.0 \
#   SUBLIM_API_TOKENS='{"…": ["read", "write", "admin"]}' SUBLIM_PUSH_TOKEN=… \
#   TASK_TOPICS="Hello Sleep" deploy/gcp/deploy.sh
#
# IMAGE is deploy/Dockerfile built and pushed beforehand (docker build + docker push, or
# Cloud Build). The datastore accepts only calls that Cloud Run's IAM let through: ID tokens of
# the API's service account (API_SERVICE_ACCOUNT; default: the project's compute service
# account). Every step is idempotent: run it again after a change. Executors run where
# you like (Cloud Run jobs, GKE, VMs) with SUBLIM_BROKER_URL=pubsub://PROJECT.
# See docs/deploy.md for the variables and what each step does.
set -euo pipefail

PROJECT="${GOOGLE_PROJECT_ID:?set GOOGLE_PROJECT_ID}"
IMAGE="${IMAGE:?set IMAGE to the pushed sublim image}"
API_TOKENS="${SUBLIM_API_TOKENS:?set SUBLIM_API_TOKENS (JSON: token -> scopes)}"
PUSH_TOKEN="${SUBLIM_PUSH_TOKEN:?set SUBLIM_PUSH_TOKEN (a secret the push route requires)}"
REGION="${REGION:-europe-west1}"
DATABASE="${FIRESTORE_DATABASE:-(default)}"
UPDATES_TOPIC="${GOOGLE_EXECUTION_UPDATES_TOPIC_ID:-TaskExecutionUpdates}"
TASK_TOPICS="${TASK_TOPICS:-Hello}"
API_SERVICE="${API_SERVICE:-sublim-api}"
DATASTORE_SERVICE="${DATASTORE_SERVICE:-sublim-datastore}"
API_SERVICE_ACCOUNT="${API_SERVICE_ACCOUNT:-}"  # default: the project's compute service account
GCLOUD="${GCLOUD:-gcloud}"
SUBLIM="${SUBLIM:-sublim}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

step() { printf '\n==> %s\n' "$*"; }
gc() { "$GCLOUD" "$@" --project="$PROJECT" --quiet; }

store_url() {
  if [[ "$DATABASE" == "(default)" ]]; then echo "firestore://$PROJECT"; else echo "firestore://$PROJECT/$DATABASE"; fi
}

service_url() { gc run services describe "$1" --region="$REGION" --format='value(status.url)'; }

api_account() {  # the identity the API runs as, and calls the datastore with
  if [[ -n "$API_SERVICE_ACCOUNT" ]]; then echo "$API_SERVICE_ACCOUNT"; return; fi
  echo "$(gc projects describe "$PROJECT" --format='value(projectNumber)')-compute@developer.gserviceaccount.com"
}

env_file() {  # KEY=VALUE... -> a YAML (JSON) file for --env-vars-file: values may hold commas
  local file
  file="$(mktemp)"
  python3 -c 'import json, sys; json.dump(dict(a.split("=", 1) for a in sys.argv[1:]), sys.stdout)' "$@" >"$file"
  echo "$file"
}

step "enabling the APIs"
gc services enable run.googleapis.com firestore.googleapis.com pubsub.googleapis.com

step "creating the Firestore database $DATABASE (native mode), unless it exists"
if ! gc firestore databases describe --database="$DATABASE" >/dev/null 2>&1; then
  gc firestore databases create --database="$DATABASE" --location="$REGION" --type=firestore-native
fi

step "declaring the composite indexes and exemptions of firestore.indexes.json"
while read -r -a index_command; do
  gc "${index_command[@]}" || echo "   (exists already, or is being built)"
done < <(python3 "$HERE/index_commands.py" "$HERE/firestore.indexes.json" --database="$DATABASE")

# Cloud Run's IAM checks every call to the datastore (an ID token of a run.invoker), so the
# datastore is told that the platform authenticates (SUBLIM_DATASTORE_AUTH=platform).
step "deploying the datastore ($DATASTORE_SERVICE): gRPC over HTTP/2, internal ingress, IAM only"
datastore_env="$(env_file "SUBLIM_STORE_URL=$(store_url)" "SUBLIM_DATASTORE_PORT=8080" \
  "SUBLIM_DATASTORE_AUTH=platform" "GOOGLE_PROJECT_ID=$PROJECT" "SUBLIM_LOG_LEVEL=INFO")"
gc run deploy "$DATASTORE_SERVICE" --image="$IMAGE" --region="$REGION" --args=datastore \
  --port=8080 --use-http2 --ingress=internal --no-allow-unauthenticated \
  --env-vars-file="$datastore_env"
datastore_host="$(service_url "$DATASTORE_SERVICE")"
datastore_host="${datastore_host#https://}"
api_sa="$(api_account)"

step "letting $api_sa (the API) invoke the datastore"
gc run services add-iam-policy-binding "$DATASTORE_SERVICE" --region="$REGION" \
  --member="serviceAccount:$api_sa" --role=roles/run.invoker

step "deploying the API ($API_SERVICE), reaching the datastore through the VPC"
api_env="$(env_file "GOOGLE_PROJECT_ID=$PROJECT" "DATASTORE_ADDRESS=$datastore_host:443" \
  "USE_TLS=true" "SUBLIM_BROKER_URL=pubsub://$PROJECT" \
  "GOOGLE_EXECUTION_UPDATES_TOPIC_ID=$UPDATES_TOPIC" "SUBLIM_PULL_UPDATES=false" \
  "SUBLIM_PUSH_TOKEN=$PUSH_TOKEN" "SUBLIM_API_TOKENS=$API_TOKENS" "SUBLIM_LOG_LEVEL=INFO" \
  "SUBLIM_DATASTORE_AUTH=platform")"
gc run deploy "$API_SERVICE" --image="$IMAGE" --region="$REGION" --args=api \
  --port=8080 --allow-unauthenticated --service-account="$api_sa" --network=default \
  --subnet=default --vpc-egress=all-traffic --env-vars-file="$api_env"
rm -f "$datastore_env" "$api_env"
api_url="$(service_url "$API_SERVICE")"

step "provisioning Pub/Sub: topics, exactly-once subscriptions, the push subscription"
read -r -a topics <<<"$TASK_TOPICS"
topic_flags=()
for topic in "${topics[@]}"; do topic_flags+=(--topic "$topic"); done
GOOGLE_EXECUTION_UPDATES_TOPIC_ID="$UPDATES_TOPIC" "$SUBLIM" gcp provision --project "$PROJECT" \
  "${topic_flags[@]}" --push-endpoint "$api_url/task_execution_update?token=$PUSH_TOKEN"

step "done"
echo "API:       $api_url  (docs: $api_url/docs)"
echo "datastore: $datastore_host:443 (internal; IAM: only $api_sa may call it)"
echo "executors: SUBLIM_BROKER_URL=pubsub://$PROJECT sublim executor MODULE:NODE"
