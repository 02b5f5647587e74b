"""iam-warden's own additions to moto's IAM server, for the tests.

moto (5.2.5) lacks three IAM operations that iam-warden calls or that its tests check:
AddClientIDToOpenIDConnectProvider, RemoveClientIDFromOpenIDConnectProvider and
ListInstanceProfileTags. This file adds them to moto's IAM response handler, following AWS's
documented behaviour (add and remove are idempotent; an unknown provider is NoSuchEntity), and
then runs moto's server with the same arguments as `moto_server`. It is ours, not moto's.
"""

import sys

from moto.core.responses import ActionResult, EmptyResult
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


def list_instance_profile_tags(self):
    name = self._get_param("InstanceProfileName")
    profile = self.backend.get_instance_profile(name)
    return ActionResult({"Tags": list(profile.tags), "IsTruncated": False})


IamResponse.add_client_id_to_open_id_connect_provider = add_client_id_to_open_id_connect_provider
IamResponse.remove_client_id_from_open_id_connect_provider = (
    remove_client_id_from_open_id_connect_provider
)
IamResponse.list_instance_profile_tags = list_instance_profile_tags

if __name__ == "__main__":
    sys.exit(main())
