"""iam-warden's own additions to moto's IAM server, for the tests.

moto (5.2.5) lacks two IAM operations that iam-warden calls and its tests check:
AddClientIDToOpenIDConnectProvider and RemoveClientIDFromOpenIDConnectProvider (it lacks
ListInstanceProfileTags too, which iam-warden does not call: GetInstanceProfile answers the
tags). This file adds them to moto's IAM response handler, following AWS's
documented behaviour (add and remove are idempotent; an unknown provider is NoSuchEntity), and
then runs moto's server with the same arguments as `moto_server`. It is ours, not moto's.
"""

import sys

from moto.core.responses import EmptyResult
from moto.iam.responses import IamResponse
from moto.server import main


def add_client_id_to_open_id_connect_provider(self):
    arn = self._get_param("OpenIDConnectProviderArn")
    client_id = self._get_param("ClientID")
    provider = self.backend.get_open_id_connect_provider(arn)
    if client_id not in provider.client_id_list:
        provider.client_id_list.append(client_id)
    return EmptyResult()


def remove_client_id_from_open_id_connect_provider(self):
    arn = self._get_param("OpenIDConnectProviderArn")
    client_id = self._get_param("ClientID")
    provider = self.backend.get_open_id_connect_provider(arn)
    if client_id in provider.client_id_list:
        provider.client_id_list.remove(client_id)
    return EmptyResult()


IamResponse.add_client_id_to_open_id_connect_provider = add_client_id_to_open_id_connect_provider
IamResponse.remove_client_id_from_open_id_connect_provider = (
    remove_client_id_from_open_id_connect_provider
)

if __name__ == "__main__":
    sys.exit(main())
