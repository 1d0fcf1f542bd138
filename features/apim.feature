Feature: Azure API Management
  A new revision of an API is not live until it is the current one: the gateway serves only the current revision,
  only while it is online, and only the operations it defines, to the backend its serviceUrl names. The service must
  be provisioned, each API current at the revision the release made, online, released (not made current behind the
  release log's back) and pointing at the component it fronts.

  @postdeploy @apim
  Scenario: API Management serves the released API revisions
    When the API Management APIs are read
    Then each API is current at its released revision, online, released and fronting its backend
