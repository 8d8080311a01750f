from tortoise import migrations
from tortoise.migrations import operations as ops
from app.accounts.models import UserState
from app.dependency_proxy.models import CacheStatus
from app.groups.models import AccessLevel, Visibility
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Group',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('parent', fields.ForeignKeyField('models.Group', source_field='parent_id', null=True, db_constraint=True, to_field='id', related_name='children', on_delete=OnDelete.RESTRICT)),
                ('path', fields.CharField(max_length=255)),
                ('full_path', fields.CharField(max_length=2048)),
                ('full_path_key', fields.CharField(unique=True, max_length=2048)),
                ('name', fields.CharField(max_length=255)),
                ('description', fields.TextField(default='', unique=False)),
                ('visibility', fields.CharEnumField(default=Visibility.PRIVATE, description='PRIVATE: private\nINTERNAL: internal\nPUBLIC: public', enum_type=Visibility, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'groups', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Blob',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('group', fields.ForeignKeyField('models.Group', source_field='group_id', db_constraint=True, to_field='id', related_name='dependency_proxy_blobs', on_delete=OnDelete.CASCADE)),
                ('digest', fields.CharField(max_length=100)),
                ('size', fields.BigIntField()),
                ('status', fields.IntEnumField(default=CacheStatus.DEFAULT, description='DEFAULT: 0\nPENDING_DESTRUCTION: 1\nPROCESSING: 2\nERROR: 3', enum_type=CacheStatus, generated=False)),
                ('read_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'dependency_proxy_blobs', 'app': 'models', 'indexes': [Index(fields=['group', 'digest', 'status']), Index(fields=['group', 'status', 'read_at', 'id']), Index(fields=['digest'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DeployToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('group', fields.ForeignKeyField('models.Group', source_field='group_id', db_constraint=True, to_field='id', related_name='deploy_tokens', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=255)),
                ('username', fields.CharField(unique=True, max_length=255)),
                ('token_digest', fields.CharField(unique=True, max_length=64)),
                ('scopes', fields.CharField(max_length=255)),
                ('expires_at', fields.DateField(null=True)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'deploy_tokens', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='GroupSetting',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('group', fields.OneToOneField('models.Group', source_field='group_id', db_constraint=True, to_field='id', related_name='dependency_proxy_setting', on_delete=OnDelete.CASCADE)),
                ('enabled', fields.BooleanField(default=True)),
                ('identity_encrypted', fields.TextField(null=True, unique=False)),
                ('secret_encrypted', fields.TextField(null=True, unique=False)),
                ('revalidation_interval', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'dependency_proxy_group_settings', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ImageTtlGroupPolicy',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('group', fields.OneToOneField('models.Group', source_field='group_id', db_constraint=True, to_field='id', related_name='dependency_proxy_image_ttl_policy', on_delete=OnDelete.CASCADE)),
                ('enabled', fields.BooleanField(default=False)),
                ('ttl', fields.IntField(default=90)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'dependency_proxy_image_ttl_group_policies', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='InstanceSetting',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('dependency_proxy_enabled', fields.BooleanField(default=True)),
                ('registry_token_expire_minutes', fields.IntField(null=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'instance_settings', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Manifest',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('group', fields.ForeignKeyField('models.Group', source_field='group_id', db_constraint=True, to_field='id', related_name='dependency_proxy_manifests', on_delete=OnDelete.CASCADE)),
                ('file_name', fields.CharField(max_length=1024)),
                ('image_name', fields.CharField(max_length=512)),
                ('reference', fields.CharField(max_length=255)),
                ('digest', fields.CharField(max_length=100)),
                ('content_type', fields.CharField(max_length=255)),
                ('size', fields.BigIntField()),
                ('content', fields.BinaryField()),
                ('status', fields.IntEnumField(default=CacheStatus.DEFAULT, description='DEFAULT: 0\nPENDING_DESTRUCTION: 1\nPROCESSING: 2\nERROR: 3', enum_type=CacheStatus, generated=False)),
                ('read_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('checked_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'dependency_proxy_manifests', 'app': 'models', 'indexes': [Index(fields=['group', 'file_name', 'status']), Index(fields=['group', 'status', 'read_at', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('username', fields.CharField(max_length=255)),
                ('username_key', fields.CharField(unique=True, max_length=255)),
                ('email', fields.CharField(unique=True, max_length=255)),
                ('name', fields.CharField(default='', max_length=255)),
                ('password_hash', fields.CharField(max_length=255)),
                ('is_admin', fields.BooleanField(default=False)),
                ('state', fields.CharEnumField(default=UserState.ACTIVE, description='ACTIVE: active\nBLOCKED: blocked', enum_type=UserState, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('last_sign_in_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'users', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Membership',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('group', fields.ForeignKeyField('models.Group', source_field='group_id', db_constraint=True, to_field='id', related_name='memberships', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='memberships', on_delete=OnDelete.CASCADE)),
                ('access_level', fields.IntEnumField(description='GUEST: 10\nREPORTER: 20\nDEVELOPER: 30\nMAINTAINER: 40\nOWNER: 50', enum_type=AccessLevel, generated=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'memberships', 'app': 'models', 'unique_together': (('group', 'user'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PersonalAccessToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='personal_access_tokens', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=255)),
                ('token_digest', fields.CharField(unique=True, max_length=64)),
                ('scopes', fields.CharField(max_length=255)),
                ('expires_at', fields.DateField(null=True)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'personal_access_tokens', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
