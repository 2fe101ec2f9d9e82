"""Each workspace's own sending settings (campaigns.models.SendingSettings): the configuration
the channels read (`config`), the connections built from it (`backends`), and saving it and
sending a test message (`services`)."""
