#!/usr/bin/env bash
# Makes one member account manageable by a hub iam-warden (--accounts): the spoke role
# platform/iam-warden, trusting only the hub's role and only with the external id, holding the
# operator's permissions (iam-warden-policy.json). Run once per account, with an administrator's
# credentials of that account:
#
#   HUB_ROLE_ARN=arn:aws:iam::111122223333:role/platform/iam-warden-hub \
#   EXTERNAL_ID=a-secret-you-chose deploy/iam/bootstrap-spoke.sh
#
# It prints the accounts-file entry of the account. Idempotent: a second run updates the trust
# policy and the permissions in place.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${HUB_ROLE_ARN:?the ARN of the hub operator role}"
: "${EXTERNAL_ID:?the external id the accounts file will give (2 to 1224 of A-Za-z0-9+=,.@:/-_)}"
POLICY_FILE=${POLICY_FILE:-$here/iam-warden-policy.json}
ROLE=iam-warden
ROLE_PATH=/platform/

caller=$(aws sts get-caller-identity --query Arn --output text)
partition=$(echo "$caller" | cut -d: -f2)
account=$(echo "$caller" | cut -d: -f5)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e "s|arn:aws:iam::111122223333:role/platform/iam-warden-hub|$HUB_ROLE_ARN|" \
    -e "s|EXTERNAL_ID|$EXTERNAL_ID|" "$here/trust-spoke.json" > "$tmp/trust.json"

if aws iam get-role --role-name "$ROLE" >/dev/null 2>&1; then
  aws iam update-assume-role-policy --role-name "$ROLE" --policy-document "file://$tmp/trust.json"
else
  # Outside the managed path and with no owner tag: iam-warden can neither change nor prune it.
  aws iam create-role --role-name "$ROLE" --path "$ROLE_PATH" \
      --description "iam-warden spoke: the hub operator manages this account's IAM through it" \
      --assume-role-policy-document "file://$tmp/trust.json" >/dev/null
fi
# The operator's permissions, inline: one role, one document, updated in place by a rerun.
aws iam put-role-policy --role-name "$ROLE" --policy-name iam-warden-operator \
    --policy-document "file://$POLICY_FILE"

cat <<ENTRY
  - name: CHANGE-ME
    id: "$account"
    roleArn: arn:$partition:iam::$account:role/platform/$ROLE
    externalId: "$EXTERNAL_ID"
ENTRY
