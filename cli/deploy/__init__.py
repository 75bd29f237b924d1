"""What ``azd up`` cannot do in one Bicep deployment, and what ``azd down`` leaves: ``python -m cli deploy ...`` and ``teardown``.

- :mod:`cli.deploy.roles`: the four least-privilege custom roles (every action with why), created ahead
  of the deployment and read back by id until they have replicated;
- :mod:`cli.deploy.topics`: the Event Grid system topics that already exist for the watched sources;
- :mod:`cli.deploy.events`: the ``resource_events`` event subscription of every system topic, once the
  function is listed in ARM, with the identity dead-lettering needs on the topic;
- :mod:`cli.deploy.teardown`: what the deployment made outside azd's resource group, listed and removed;
- :mod:`cli.deploy.environment`: the azd environment (values in, ``azd env set`` out), the clock, the errors.
"""
